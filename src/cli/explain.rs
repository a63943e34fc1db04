//! Notes that connect a config error to the template that caused it.
//!
//! Unset variables render as empty strings (as in ContainerPilot), so
//! `consul: "{{ .CONSUL_HOST }}:8500"` without `CONSUL_HOST` becomes
//! `":8500"`, and the error about the rendered value ("has no host") does not
//! say why. When the template line of an error reads a variable that is
//! unset or empty, the note names it and quotes the line.

use std::collections::HashMap;

/// The variables one template line reads: `.NAME` (the environment is the
/// template's data) and `env "NAME"`, in order, without repeats.
pub fn variables(template_line: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut rest = template_line;
    while let Some(start) = rest.find("{{") {
        let action = &rest[start + 2..];
        let end = action.find("}}").unwrap_or(action.len());
        let inside = &action[..end];
        rest = &action[end..];
        let mut names = Vec::new();
        let chars: Vec<char> = inside.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let starts_field = chars[i] == '.'
                && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_'));
            if starts_field {
                let name: String = chars[i + 1..]
                    .iter()
                    .take_while(|c| c.is_alphanumeric() || **c == '_')
                    .collect();
                i += name.chars().count();
                names.push(name);
            }
            i += 1;
        }
        let mut words = inside.split_whitespace().peekable();
        while let Some(word) = words.next() {
            if word.trim_start_matches('(') == "env"
                && let Some(arg) = words.peek()
            {
                names.push(arg.trim_matches(|c| c == '"' || c == ')').to_string());
            }
        }
        for name in names {
            if !name.is_empty() && !found.contains(&name) {
                found.push(name);
            }
        }
    }
    found
}

/// A note for each variable on line `line` (1-based) of `template` that is
/// unset or empty in `env`; none when the line reads no such variable.
pub fn empty_variables(
    template: &str,
    file: &str,
    line: usize,
    env: &HashMap<String, String>,
) -> Vec<String> {
    let Some(text) = template.split('\n').nth(line.saturating_sub(1)) else {
        return Vec::new();
    };
    variables(text)
        .into_iter()
        .filter_map(|name| {
            let why = match env.get(&name) {
                None => "is not set",
                Some(v) if v.is_empty() => "is empty",
                Some(_) => return None,
            };
            Some(format!(
                "note: {file}:{line} reads `{name}`, which {why}, so it rendered as \"\": {}\n  \
                 = help: set {name} in the environment, or give a fallback: \
                 `{{{{ .{name} | default \"...\" }}}}`",
                text.trim()
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_variables_a_line_reads() {
        assert_eq!(
            variables(r#"  consul: "{{ .CONSUL_HOST }}:{{.PORT | default "8500"}}","#),
            vec!["CONSUL_HOST", "PORT"]
        );
        assert_eq!(
            variables(r#"exec: "{{ env "APP" }} {{ .a.b }}""#),
            vec!["APP", "a"]
        );
        assert!(variables("port: 80, name: \"a.b\"").is_empty());
    }

    #[test]
    fn notes_only_unset_or_empty_variables() {
        let template = "{\n  consul: \"{{ .CONSUL_HOST }}:8500\",\n}";
        let env = HashMap::from([("OTHER".to_string(), "x".to_string())]);
        let notes = empty_variables(template, "c.json5", 2, &env);
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].starts_with(
                "note: c.json5:2 reads `CONSUL_HOST`, which is not set, so it rendered as \"\": \
                 consul: \"{{ .CONSUL_HOST }}:8500\","
            ),
            "{}",
            notes[0]
        );
        let set = HashMap::from([("CONSUL_HOST".to_string(), "c".to_string())]);
        assert!(empty_variables(template, "c.json5", 2, &set).is_empty());
        assert!(empty_variables(template, "c.json5", 9, &env).is_empty());
    }
}
