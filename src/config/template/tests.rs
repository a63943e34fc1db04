//! Tests for the template renderer, including every config of the
//! compatibility corpus.

use std::collections::HashMap;

use super::{TemplateError, render};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ok_with(src: &str, pairs: &[(&str, &str)]) -> String {
    render(src, &env(pairs)).unwrap_or_else(|e| panic!("{src:?} failed: {e}"))
}

fn ok(src: &str) -> String {
    ok_with(
        src,
        &[("NAME", "pilot"), ("PARTS", "a:b:c"), ("COUNT", "3")],
    )
}

fn err(src: &str) -> TemplateError {
    match render(src, &env(&[("NAME", "pilot"), ("LIST", "a,b")])) {
        Ok(out) => panic!("{src:?} rendered {out:?}, expected an error"),
        Err(e) => e,
    }
}

/// Asserts an error's position and that its message contains `part`.
fn err_at(src: &str, line: usize, column: usize, part: &str) {
    let e = err(src);
    assert_eq!((e.line, e.column), (line, column), "{src:?}: {e}");
    assert!(e.message.contains(part), "{src:?}: {e} lacks {part:?}");
}

// ---- text, fields, variables ----

#[test]
fn text_without_actions_is_unchanged() {
    assert_eq!(ok(""), "");
    assert_eq!(ok("{ \"a\": 1 } } {"), "{ \"a\": 1 } } {");
    assert_eq!(ok("héllo\n"), "héllo\n");
}

#[test]
fn field_reads_env_and_unset_is_empty() {
    assert_eq!(ok("Hello, {{.NAME}}!"), "Hello, pilot!");
    assert_eq!(ok("Hello, {{ .NONAME }}!"), "Hello, !");
    assert_eq!(
        ok("{{ $.NAME }}{{ index . \"NAME\" }}{{ index $ \"NOPE\" }}"),
        "pilotpilot"
    );
}

#[test]
fn dot_and_root_print_as_go_map() {
    assert_eq!(
        ok_with("{{ . }}|{{ $ }}", &[("B", "2"), ("A", "1")]),
        "map[A:1 B:2]|map[A:1 B:2]"
    );
}

#[test]
fn variables_declare_assign_and_scope() {
    assert_eq!(ok("{{ $x := .NAME }}[{{ $x }}]"), "[pilot]");
    assert_eq!(ok("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}"), "2");
    // A declaration inside `if` ends at its {{end}}; the outer one survives.
    assert_eq!(
        ok("{{ $x := 1 }}{{ if true }}{{ $x := 2 }}{{ $x }}{{ end }}{{ $x }}"),
        "21"
    );
    // Assignment inside `if` changes the outer variable.
    assert_eq!(
        ok("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}"),
        "2"
    );
    assert_eq!(
        ok("{{ if $v := .NAME }}{{ $v }}{{ else }}none{{ end }}"),
        "pilot"
    );
}

#[test]
fn field_on_variable_holding_env() {
    assert_eq!(ok("{{ $e := . }}{{ $e.NAME }}"), "pilot");
}

// ---- delimiters ----

#[test]
fn trim_markers_remove_adjacent_whitespace() {
    assert_eq!(ok("a  \n\t {{- .NAME -}} \n  b"), "apilotb");
    assert_eq!(ok("a {{- .NAME }} b"), "apilot b");
    assert_eq!(ok("a {{ .NAME -}} b"), "a pilotb");
    // Without the space, `-3` is a number and nothing is trimmed.
    assert_eq!(ok("a {{-3}} b"), "a -3 b");
}

#[test]
fn comments_render_nothing() {
    assert_eq!(ok("a{{/* comment */}}b"), "ab");
    assert_eq!(ok("a {{- /* multi\nline */ -}} b"), "ab");
    assert_eq!(ok("a{{/* {{ .NAME }} */}}b"), "ab");
}

#[test]
fn closing_delimiter_inside_strings_does_not_end_the_action() {
    assert_eq!(ok("{{ \"}}\" }}"), "}}");
    assert_eq!(
        ok("{{`{{ GetInterfaceIP \\\"eth0\\\" }}`}}"),
        "{{ GetInterfaceIP \\\"eth0\\\" }}"
    );
}

#[test]
fn actions_may_span_lines() {
    assert_eq!(ok("{{ print\n  .NAME\n  \"x\" }}"), "pilotx");
}

// ---- pipelines and literals ----

#[test]
fn piped_value_is_the_last_argument() {
    assert_eq!(ok("{{ \"b\" | printf \"%s-%s\" \"a\" }}"), "a-b");
    assert_eq!(ok("{{ .PARTS | split \":\" | join \".\" }}"), "a.b.c");
    assert_eq!(
        ok("{{ .NAME | replaceAll \"i\" \"1\" | printf \"<%s>\" }}"),
        "<p1lot>"
    );
}

#[test]
fn parenthesised_pipelines() {
    assert_eq!(ok("{{ join \"-\" (split \":\" .PARTS) }}"), "a-b-c");
    assert_eq!(ok("{{ (print \"a\" | printf \"%s%s\" \"b\") }}"), "ba");
    assert_eq!(ok("{{ (.).NAME }} {{ (index . \"NAME\") }}"), "pilot pilot");
}

#[test]
fn string_literals_with_go_escapes() {
    assert_eq!(ok(r#"{{ "a\tb\n\"c\"\\" }}"#), "a\tb\n\"c\"\\");
    assert_eq!(ok(r#"{{ "\x41\101\u00e9\U0001F600" }}"#), "AAé😀");
    assert_eq!(ok("{{ `raw \\n \"q\"` }}"), "raw \\n \"q\"");
    assert_eq!(ok("{{ `two\r\nlines` }}"), "two\nlines");
}

#[test]
fn number_bool_and_char_literals() {
    assert_eq!(
        ok("{{ 42 }} {{ -7 }} {{ 0x1F }} {{ 0o17 }} {{ 017 }} {{ 0b101 }} {{ 1_000 }}"),
        "42 -7 31 15 15 5 1000"
    );
    assert_eq!(
        ok("{{ 1.5 }} {{ 1.0 }} {{ 1e3 }} {{ 2.5e6 }} {{ 0.00001 }}"),
        "1.5 1 1000 2.5e+06 1e-05"
    );
    assert_eq!(ok("{{ 99999999999999999999 }}"), "1e+20");
    assert_eq!(
        ok("{{ true }} {{ false }} {{ 'a' }} {{ '\\n' }}"),
        "true false 97 10"
    );
}

#[test]
fn printing_values_like_go() {
    assert_eq!(ok("{{ split \",\" \"a,b,c\" }}"), "[a b c]");
    assert_eq!(ok("{{ loop 3 }}"), "[0 1 2]");
    assert_eq!(ok("{{ split \",\" \"\" }}"), "[]");
    assert_eq!(ok("{{ eq 1 1 }}"), "true");
    assert_eq!(ok("{{ print nil }}"), "<nil>");
}

// ---- control structures ----

#[test]
fn if_else_if_else() {
    let t = "{{ if eq .N \"1\" }}one{{ else if eq .N \"2\" }}two{{ else }}other{{ end }}";
    assert_eq!(ok_with(t, &[("N", "1")]), "one");
    assert_eq!(ok_with(t, &[("N", "2")]), "two");
    assert_eq!(ok_with(t, &[("N", "3")]), "other");
    assert_eq!(ok_with(t, &[]), "other");
    assert_eq!(ok("{{if .NAME}}y{{end}}{{if .NOPE}}n{{end}}"), "y");
}

#[test]
fn go_truthiness() {
    let truth = |expr: &str| ok(&format!("{{{{ if {expr} }}}}T{{{{ else }}}}F{{{{ end }}}}"));
    for falsy in [
        "\"\"",
        "0",
        "0.0",
        "false",
        "(print)",
        ".UNSET",
        "(split \",\" \"\")",
        "(loop 0)",
    ] {
        assert_eq!(truth(falsy), "F", "{falsy}");
    }
    for truthy in [
        "\"0\"",
        "\"false\"",
        "1",
        "-1",
        "0.5",
        "true",
        ".NAME",
        "(split \",\" \"a\")",
        ".",
    ] {
        assert_eq!(truth(truthy), "T", "{truthy}");
    }
}

#[test]
fn range_over_lists() {
    assert_eq!(
        ok("{{ range split \",\" \"a,b\" }}<{{ . }}>{{ end }}"),
        "<a><b>"
    );
    assert_eq!(
        ok("{{ range $i, $e := split \",\" \"a,b\" }}{{ $i }}={{ $e }};{{ end }}"),
        "0=a;1=b;"
    );
    // One variable gets the element, not the index.
    assert_eq!(
        ok("{{ range $e := split \",\" \"x,y\" }}{{ $e }}{{ end }}"),
        "xy"
    );
    assert_eq!(
        ok("{{ range $i := loop 2 5 -}} i={{ $i }},{{ end }}"),
        "i=2,i=3,i=4,"
    );
    assert_eq!(
        ok("{{ range split \",\" \"\" }}x{{ else }}empty{{ end }}"),
        "empty"
    );
    // Variables declared in the range do not outlive it.
    assert!(
        err("{{ range $e := loop 2 }}{{ end }}{{ $e }}")
            .message
            .contains("undefined variable")
    );
}

#[test]
fn range_break_and_continue() {
    let t = "{{ range $i := loop 10 }}{{ if eq $i 2 }}{{ continue }}{{ end }}{{ if eq $i 4 }}{{ break }}{{ end }}{{ $i }}{{ end }}";
    assert_eq!(ok(t), "013");
    err_at("{{ break }}", 1, 1, "outside {{range}}");
}

#[test]
fn range_over_env_is_sorted() {
    let out = ok_with(
        "{{ range $k, $v := . }}{{ $k }}={{ $v }} {{ end }}",
        &[("B", "2"), ("A", "1")],
    );
    assert_eq!(out, "A=1 B=2 ");
}

#[test]
fn with_sets_dot() {
    assert_eq!(ok("{{ with .NAME }}<{{ . }}>{{ end }}"), "<pilot>");
    assert_eq!(
        ok("{{ with .NOPE }}<{{ . }}>{{ else }}none{{ end }}"),
        "none"
    );
    assert_eq!(
        ok("{{ with .NOPE }}a{{ else with .NAME }}{{ . }}{{ end }}"),
        "pilot"
    );
}

#[test]
fn corpus_loop_idiom() {
    let t = "{{ range $i := loop 0 30 -}}{{ if (env (printf \"SERVICE_NAME_%d\" $i)) -}}\n\
             {{ $ServiceName := (env (printf \"SERVICE_NAME_%d\" $i)) -}}\n\
             {{ $ServiceInterval := (env (printf \"SERVICE_INTERVAL_%d\" $i)) | default 10 -}}\n\
             [{{ $ServiceName }}:{{ $ServiceInterval }}]{{- end }}{{- end }}";
    let out = ok_with(
        t,
        &[
            ("SERVICE_NAME_0", "web"),
            ("SERVICE_NAME_29", "db"),
            ("SERVICE_INTERVAL_29", "5"),
        ],
    );
    assert_eq!(out, "[web:10][db:5]");
    assert_eq!(ok_with(t, &[]), "");
}

// ---- builtins ----

#[test]
fn and_or_not() {
    assert_eq!(
        ok("{{ and 1 \"x\" }}|{{ and 1 0 2 }}|{{ and \"\" 2 }}"),
        "x|0|"
    );
    assert_eq!(
        ok("{{ or 0 \"\" }}|{{ or 0 \"a\" \"b\" }}|{{ or .CONSUL_DATACENTER \"dc1\" }}"),
        "|a|dc1"
    );
    assert_eq!(ok("{{ not 0 }} {{ not \"a\" }}"), "true false");
    // Short-circuit: the failing call is never made.
    assert_eq!(
        ok("{{ or 1 (join \",\" \"no\") }}|{{ and 0 (join \",\" \"no\") }}"),
        "1|0"
    );
    assert_eq!(ok("{{ if and .NAME .NOPE }}y{{ else }}n{{ end }}"), "n");
    assert_eq!(ok("{{ 0 | or 1 }}{{ 5 | and 1 }}"), "15");
    err_at("{{ and }}", 1, 4, "wrong number of args for and");
}

#[test]
fn comparisons() {
    assert_eq!(
        ok("{{ eq .NAME \"pilot\" }} {{ eq 1 2 }} {{ eq 3 1 2 3 }} {{ ne \"a\" \"b\" }}"),
        "true false true true"
    );
    assert_eq!(
        ok("{{ lt 1 2 }} {{ le 2 2 }} {{ gt 1 2 }} {{ ge 2 3 }}"),
        "true true false false"
    );
    assert_eq!(
        ok("{{ lt \"a\" \"b\" }} {{ gt 2.5 1.5 }} {{ eq true true }}"),
        "true true true"
    );
    err_at(
        "{{ eq 1 \"1\" }}",
        1,
        4,
        "incompatible types for comparison",
    );
    err_at("{{ lt true false }}", 1, 4, "invalid type for comparison");
    err_at("{{ eq 1 }}", 1, 4, "missing argument for comparison");
    err_at("{{ eq (loop 2) 1 }}", 1, 4, "non-comparable");
    err_at(
        "{{ lt 1 }}",
        1,
        4,
        "wrong number of args for lt: want 2 got 1",
    );
}

#[test]
fn len_and_index() {
    assert_eq!(
        ok("{{ len .NAME }} {{ len (split \":\" .PARTS) }} {{ len (loop 4) }} {{ len \"é\" }}"),
        "5 3 4 2"
    );
    assert_eq!(
        ok("{{ index (split \":\" .PARTS) 1 }} {{ index (loop 5 9) 0 }} {{ index \"abc\" 1 }}"),
        "b 5 98"
    );
    assert_eq!(
        ok("{{ index . \"NAME\" }}|{{ index . \"NONE\" }}|{{ index \"x\" }}"),
        "pilot||x"
    );
    err_at("{{ len 3 }}", 1, 4, "len of type int");
    err_at("{{ index (loop 2) 5 }}", 1, 4, "index out of range: 5");
    err_at(
        "{{ index (loop 2) \"a\" }}",
        1,
        4,
        "cannot index slice/array with type string",
    );
    err_at("{{ index 3 1 }}", 1, 4, "can't index item of type int");
    err_at("{{ index . 1 }}", 1, 4, "should be string");
}

#[test]
fn print_and_println() {
    assert_eq!(
        ok("{{ print \"a\" \"b\" }}|{{ print 1 2 }}|{{ print \"a\" 1 2 \"b\" }}"),
        "ab|1 2|a1 2b"
    );
    assert_eq!(ok("{{ println \"a\" 1 }}"), "a 1\n");
    assert_eq!(ok("{{ print }}"), "");
}

#[test]
fn printf_verbs() {
    assert_eq!(
        ok("{{ printf \"%s|%d|%v|%q|%%|%t\" \"s\" 42 (loop 2) \"q\\\"\" true }}"),
        "s|42|[0 1]|\"q\\\"\"|%|true"
    );
    assert_eq!(
        ok(
            "{{ printf \"[%5s][%-5s][%05d][%x][%X][%#x][%o][%b][%c]\" \"ab\" \"ab\" -42 255 255 255 8 5 65 }}"
        ),
        "[   ab][ab   ][-0042][ff][FF][0xff][10][101][A]"
    );
    assert_eq!(
        ok("{{ printf \"%.2f|%f|%e|%g|%.3s|%+d|%6.2f\" 3.14159 1.5 1500.0 0.5 \"abcdef\" 3 2.5 }}"),
        "3.14|1.500000|1.500000e+03|0.5|abc|+3|  2.50"
    );
    assert_eq!(
        ok("{{ printf \"%v %s %q\" .NAME (split \",\" \"a,b\") (split \",\" \"a,b\") }}"),
        "pilot [a b] [\"a\" \"b\"]"
    );
    assert_eq!(ok("{{ printf \"%*d|%-*d|\" 4 7 3 1 }}"), "   7|1  |");
    assert_eq!(
        ok("{{ printf \"%6.2v|%08.3f|%.3g|%g\" 3.14159 -3.14159 1234.5678 1e8 }}"),
        "   3.1|-003.142|1.23e+03|1e+08"
    );
}

/// Issue 14, defect 1: Rust's formatter panics on a precision above 65535;
/// Go pads with zeros up to its own limit of a million.
#[test]
fn printf_huge_float_precision_pads_with_zeros() {
    let fixed = ok("{{ printf \"%.65536f\" 1.5 }}");
    assert_eq!(fixed.len(), 2 + 65536);
    assert!(
        fixed.starts_with("1.5000") && fixed.ends_with('0'),
        "{}",
        &fixed[..10]
    );
    let exp = ok("{{ printf \"%.70000e\" 1.5 }}");
    assert!(exp.starts_with("1.5000") && exp.ends_with("0e+00"));
    assert_eq!(exp.len(), 2 + 70000 + 4);
    let star = ok("{{ printf \"%.*f\" 100000 0.25 }}");
    assert_eq!(star.len(), 2 + 100000);
    assert_eq!(ok("{{ printf \"%.70000g|%.70000v\" 0.5 2.0 }}"), "0.5|2");
    // The smallest subnormal needs 1074 places: every one of them is kept.
    let tiny = ok("{{ printf \"%.2000f\" 5e-324 }}");
    assert_eq!(tiny.trim_end_matches('0').len(), 2 + 1074);
    assert_eq!(ok("{{ printf \"%.1000001f\" 1.0 }}"), "%!(BADPREC)1.000000");
}

#[test]
fn printf_mistakes_show_in_output_like_go() {
    assert_eq!(ok("{{ printf \"%d\" \"x\" }}"), "%!d(string=x)");
    assert_eq!(ok("{{ printf \"%s %s\" \"x\" }}"), "x %!s(MISSING)");
    assert_eq!(
        ok("{{ printf \"%s\" \"x\" 1 \"y\" }}"),
        "x%!(EXTRA int=1, string=y)"
    );
    assert_eq!(ok("{{ printf \"100%\" }}"), "100%!(NOVERB)");
    assert_eq!(ok("{{ printf \"%z\" 1 }}"), "%!z(int=1)");
    assert_eq!(ok("{{ printf \"%d\" nil }}"), "%!d(<nil>)");
    err_at(
        "{{ printf 1 }}",
        1,
        4,
        "wrong type for argument 1 of printf: expected string; got int",
    );
    err_at("{{ printf }}", 1, 4, "wrong number of args for printf");
}

// ---- ContainerPilot's functions ----

#[test]
fn default_function() {
    assert_eq!(ok("{{ .NONAME | default \"World\" }}"), "World");
    assert_eq!(ok("{{ .NAME | default \"World\" }}"), "pilot");
    assert_eq!(
        ok("{{ .NONAME | default 100 }}|{{ .NONAME | default 10.1 }}"),
        "100|10.1"
    );
    assert_eq!(
        ok("{{ default \"d\" \"v\" }}|{{ default \"d\" \"\" }}"),
        "v|d"
    );
    // Only a non-empty string counts as a value (ContainerPilot's defaultValue).
    assert_eq!(ok("{{ 5 | default \"d\" }}"), "d");
    err_at(
        "{{ default \"x\" }}",
        1,
        4,
        "wrong number of args for default: want 2 got 1",
    );
}

#[test]
fn env_function() {
    assert_eq!(
        ok("{{ env \"NAME\" }}|{{ env \"UNSET\" }}|{{ env (printf \"NA%s\" \"ME\") }}"),
        "pilot||pilot"
    );
    err_at("{{ env 1 }}", 1, 4, "expected string; got int");
    err_at(
        "{{ env }}",
        1,
        4,
        "wrong number of args for env: want 1 got 0",
    );
}

#[test]
fn split_function() {
    assert_eq!(ok("{{ split \":\" .PARTS }}"), "[a b c]");
    assert_eq!(
        ok("{{ split \",\" \"  a,b  \" }}|{{ split \",\" \"   \" }}|{{ len (split \",\" \"\") }}"),
        "[a b]|[]|0"
    );
    assert_eq!(
        ok("{{ split \",\" \"a,,b,\" | len }}|{{ split \"\" \"abc\" }}"),
        "4|[a b c]"
    );
    // Arguments the wrong way round still split (",".split(PARTS)).
    assert_eq!(ok("{{ split .PARTS \":\" }}"), "[:]");
    err_at("{{ split \",\" }}", 1, 4, "wrong number of args for split");
    err_at(
        "{{ split \",\" 5 }}",
        1,
        4,
        "wrong type for argument 2 of split: expected string; got int",
    );
}

#[test]
fn join_function() {
    assert_eq!(ok("{{ join \", \" (split \":\" .PARTS) }}"), "a, b, c");
    assert_eq!(ok("{{ split \":\" \"\" | join \",\" }}"), "");
    err_at(
        "{{ join \",\" .NAME }}",
        1,
        4,
        "wrong type for argument 2 of join: expected []string; got string",
    );
    err_at(
        "{{ join \",\" (loop 3) }}",
        1,
        4,
        "expected []string; got []int",
    );
    err_at(
        "{{ join (split \",\" \"a\") \",\" }}",
        1,
        4,
        "wrong type for argument 1 of join: expected string; got []string",
    );
}

#[test]
fn replace_all_function() {
    assert_eq!(ok("{{ .NAME | replaceAll \"i\" \"_\" }}"), "p_lot");
    assert_eq!(ok("{{ replaceAll \"\" \"-\" \"ab\" }}"), "-a-b-");
    err_at(
        "{{ replaceAll \"a\" \"b\" }}",
        1,
        4,
        "wrong number of args for replaceAll: want 3 got 2",
    );
}

#[test]
fn regex_replace_all_function() {
    assert_eq!(ok("{{ .NAME | regexReplaceAll \"[ilo]+\" \"_\" }}"), "p_t");
    assert_eq!(
        ok("{{ regexReplaceAll \"(\\\\w+)@(\\\\w+)\" \"$2 at ${1}\" \"me@host\" }}"),
        "host at me"
    );
    // As in Go (RE2): the Perl classes and word boundaries are ASCII-only,
    // Unicode classes and case folding are not.
    assert_eq!(
        ok("{{ regexReplaceAll \"\\\\d+|\\\\s\" \"#\" \"a1 b٣\u{00a0}\" }}"),
        "a##b٣\u{00a0}"
    );
    assert_eq!(
        ok("{{ regexReplaceAll \"\\\\bb|[\\\\W\\\\d]\" \"_\" \"éb-9x\" }}"),
        "____x"
    );
    assert_eq!(
        ok("{{ regexReplaceAll \"(?i)\\\\p{Greek}+É\" \"-\" \"aΩμé\" }}"),
        "a-"
    );
    assert_eq!(
        ok("{{ regexReplaceAll \"\\\\\\\\d\" \"x\" \"a\\\\d\" }}"),
        "ax"
    );
    err_at(
        "line\n {{ regexReplaceAll \"(\" \"x\" \"y\" }}",
        2,
        5,
        "invalid regular expression",
    );
}

#[test]
fn loop_function() {
    assert_eq!(
        ok("{{ loop 5 }}|{{ loop 2 5 }}|{{ loop 10 7 }}|{{ loop 0 }}"),
        "[0 1 2 3 4]|[2 3 4]|[10 9 8]|[]"
    );
    assert_eq!(ok("{{ loop .COUNT }}|{{ loop 1 .COUNT }}"), "[0 1 2]|[1 2]");
    err_at(
        "{{ loop }}",
        1,
        4,
        "loop: wrong number of arguments, expected 1 or 2, but got 0",
    );
    err_at("{{ loop 1 2 3 }}", 1, 4, "but got 3");
    err_at(
        "{{ loop \"x\" }}",
        1,
        4,
        "cannot convert \"x\" to an integer",
    );
    err_at("{{ loop 1.5 }}", 1, 4, "expected int; got float64");
    err_at("{{ loop 0 100000000000 }}", 1, 4, "too long");
}

// ---- errors and their positions ----

#[test]
fn display_format() {
    let e = TemplateError {
        line: 3,
        column: 7,
        message: "boom".into(),
    };
    assert_eq!(e.to_string(), "line 3, column 7: boom");
}

#[test]
fn parse_errors_point_at_the_action() {
    err_at(
        "ok\n  {{ nosuch 1 }}",
        2,
        6,
        "function \"nosuch\" not defined",
    );
    err_at(
        "ok\n {{ if .NAME }}x",
        2,
        5,
        "unclosed {{if}}: missing {{end}}",
    );
    err_at("a\nb {{ .NAME ", 2, 3, "unclosed action");
    err_at("x{{ end }}", 1, 2, "unexpected {{end}}");
    err_at("x\n{{ else }}", 2, 1, "unexpected {{else}}");
    err_at(
        "{{ if 1 }}{{ else }}{{ else }}{{ end }}",
        1,
        21,
        "expected {{end}}; found {{else}}",
    );
    err_at(
        "{{ range loop 2 }}{{ else if 1 }}{{ end }}",
        1,
        27,
        "unexpected if after else",
    );
    err_at("{{ $x }}", 1, 4, "undefined variable \"$x\"");
    err_at("{{ $x = 1 }}", 1, 4, "undefined variable \"$x\"");
    err_at("{{ $a, $b := loop 2 }}", 1, 6, "too many declarations");
    err_at("{{ 1x }}", 1, 4, "bad number syntax: 1x");
    err_at("{{ \"abc }}", 1, 4, "unterminated quoted string");
    err_at("{{ `abc }}", 1, 4, "unterminated raw quote");
    err_at("{{ \"\\q\" }}", 1, 4, "invalid escape");
    err_at("{{ 'ab' }}", 1, 4, "malformed character constant");
    err_at("{{ print # }}", 1, 10, "unrecognized character");
    err_at("{{ (print 1 }}", 1, 4, "unclosed left paren");
    err_at("{{ print 1) }}", 1, 11, "unexpected ) in command");
    err_at("{{ }}", 1, 1, "missing value for command");
    err_at("{{ if }}{{ end }}", 1, 4, "missing value for if");
    err_at("{{ .NAME | }}", 1, 10, "missing value for command");
    err_at(
        "{{ .NAME | \"x\" }}",
        1,
        12,
        "non executable command in pipeline stage 2",
    );
    err_at("{{ print if }}", 1, 10, "unexpected <if>");
    err_at("{{ define \"x\" }}{{ end }}", 1, 1, "not supported");
    err_at("{{ \"a\".X }}", 1, 7, "unexpected .X after term");
    err_at("a{{/* open", 1, 2, "unclosed comment");
    err_at(
        "{{/* c */ x }}",
        1,
        1,
        "comment ends before closing delimiter",
    );
    err_at("{{ end 1 }}", 1, 8, "unexpected 1 in end");
}

#[test]
fn errors_in_unexecuted_branches_still_fail() {
    err_at("{{ if false }}{{ nosuch }}{{ end }}", 1, 18, "not defined");
}

#[test]
fn execution_errors_point_at_the_call() {
    // The bob corpus config: split with swapped arguments feeds join a list.
    let src = "tags: [\"{{join (split .LIST \",\") \"\\\", \\\"\"}}\"]";
    err_at(
        src,
        1,
        11,
        "wrong type for argument 1 of join: expected string; got []string",
    );
    err_at(
        "a\n\n   {{ .NAME | join \",\" }}",
        3,
        15,
        "expected []string; got string",
    );
    err_at(
        "{{ .NAME.X }}",
        1,
        4,
        "can't evaluate field X in type string",
    );
    err_at(
        "{{ \"a\" 1 }}",
        1,
        4,
        "can't give argument to non-function \"a\"",
    );
    err_at(
        "{{ 1 | .NAME }}",
        1,
        8,
        "can't give argument to non-function .NAME",
    );
    err_at("{{ nil }}", 1, 4, "nil is not a command");
    err_at("{{ if nil }}{{ end }}", 1, 7, "nil is not a command");
    err_at("{{ range 5 }}{{ end }}", 1, 4, "range can't iterate over 5");
    err_at(
        "{{ range .NAME }}{{ end }}",
        1,
        4,
        "range can't iterate over pilot",
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    err_at("é😀 {{ nosuch }}", 1, 7, "not defined");
}

// ---- robustness ----

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep_parens = format!("{{{{ {}1{} }}}}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(err(&deep_parens).message.contains("nested too deeply"));
    let deep_ifs = format!(
        "{}{}",
        "{{ if 1 }}".repeat(10_000),
        "{{ end }}".repeat(10_000)
    );
    assert!(err(&deep_ifs).message.contains("nested too deeply"));
    let long_chain = format!(
        "{{{{ if 0 }}}}{}{{{{ end }}}}",
        "{{ else if 0 }}".repeat(10_000)
    );
    assert!(err(&long_chain).message.contains("nested too deeply"));
    let nested_ok = format!("{}x{}", "{{ if 1 }}".repeat(50), "{{ end }}".repeat(50));
    assert_eq!(ok(&nested_ok), "x");
}

/// Tiny deterministic generator, so the mutation test needs no crate.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as usize
    }
}

#[test]
fn mangled_templates_never_panic() {
    let seed = "{{ range $i, $e := .PARTS | split \":\" -}} {{ if and (eq $i 1) (ne $e \"x\") }}\
                {{ printf \"%05.2f %q\" 1.5 `r` }}{{ else if .X }}{{ index . \"K\" }}{{ else }}\
                {{/* c */}}{{ $e | default 'c' | len }}{{ end }}{{ end }}{{ with $x := loop 1 3 }}\
                {{ join \",\" (split \",\" \"a,b\") }}{{ regexReplaceAll \"(a)\" \"$1\" \"a\" }}{{ end }}";
    let alphabet: Vec<char> = "{}()|$.\"'`-:=, \n\\*/%0a".chars().collect();
    let e = env(&[("PARTS", "a:b"), ("X", "1")]);
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let mut chars: Vec<char> = seed.chars().collect();
        for _ in 0..1 + rng.next() % 4 {
            let at = rng.next() % (chars.len() + 1);
            match rng.next() % 3 {
                0 if at < chars.len() => {
                    chars.remove(at);
                }
                1 if at < chars.len() => chars[at] = alphabet[rng.next() % alphabet.len()],
                _ => chars.insert(at, alphabet[rng.next() % alphabet.len()]),
            }
        }
        let src: String = chars.into_iter().collect();
        if let Err(err) = render(&src, &e) {
            assert!(err.line >= 1 && err.column >= 1, "{src:?}: {err}");
        }
    }
}

// ---- the compatibility corpus ----

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/compat-corpus");

/// The one corpus config whose own template is wrong once its variable is set.
const BOB: &str = "v3/caseywebdev__bob__etc_containerpilot.json5";

/// A value of the kind a deployment would give the variable.
fn plausible(name: &str) -> &'static str {
    let has = |part: &str| name.contains(part);
    match name {
        "WATCH" => "1",
        "CONSUL_AGENT" | "CONSUL_DEV" | "ETCD_BOOTSTRAP" | "HAPROXY_EXPORTER" | "TLS_VERIFY" => {
            "true"
        }
        "SCHEME" => "http",
        "ACME_DOMAIN" => "example.com",
        "CONSUL_DATACENTER" => "dc1",
        "CONSUL_ENCRYPT" => "c2VjcmV0a2V5",
        "CONSUL_TOKEN" | "CASSANDRA_PASSWORD" => "s3cret",
        "REPLICASET" | "MONGO_REPLSET" => "rs0",
        "LOG_FORMAT" => "text",
        _ if has("PORT") => "8500",
        _ if has("TAGS") => "web,api",
        _ if has("INTERFACES_STATIC") => "10.0.0.5",
        _ if has("INTERFACES") || has("CIDR") => "eth0",
        _ if has("LOG") => "DEBUG",
        _ if has("URL") => "http://consul:8500",
        _ if has("CONSUL") => "consul",
        _ if has("INTERVAL") || has("TTL") || has("TIMEOUT") || has("RESTARTS") => "10",
        _ if has("EXEC") || has("NODE_START") => "/usr/local/bin/app",
        _ if has("HOST") || has("ADDR") => "10.0.0.5",
        _ if has("NAME")
            || has("USER")
            || has("NAMESPACE")
            || has("BACKEND")
            || has("ENDPOINT") =>
        {
            "app"
        }
        _ => "value",
    }
}

/// (file under the corpus, variables it reads) from MANIFEST.tsv, with
/// `NAME_*` families expanded to `NAME_0` ... `NAME_29`.
fn manifest() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(format!("{CORPUS}/MANIFEST.tsv")).expect("MANIFEST.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    assert_eq!(
        header,
        ["file", "version", "repo", "path", "commit", "template_vars"]
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let vars = cols.get(5).copied().unwrap_or("").split_whitespace();
            let vars = vars
                .flat_map(|v| match v.strip_suffix('*') {
                    Some(stem) => (0..30).map(|i| format!("{stem}{i}")).collect(),
                    None => vec![v.to_string()],
                })
                .collect();
            (format!("{}/{}", cols[1], cols[0]), vars)
        })
        .collect()
}

#[test]
fn renders_every_corpus_file() {
    let entries = manifest();
    let on_disk: usize = ["v2", "v3"]
        .iter()
        .map(|v| {
            std::fs::read_dir(format!("{CORPUS}/{v}"))
                .expect("corpus dir")
                .count()
        })
        .sum();
    assert_eq!(
        entries.len(),
        on_disk,
        "MANIFEST.tsv and the corpus folders disagree"
    );
    assert_eq!(entries.len(), 127);
    for (file, vars) in entries {
        let source = std::fs::read_to_string(format!("{CORPUS}/{file}")).expect("corpus file");

        // Unset variables render as empty strings, never as a template error.
        let bare = render(&source, &HashMap::new())
            .unwrap_or_else(|e| panic!("{file} without variables: {e}"));
        assert!(!bare.contains("<no value>"), "{file}");

        let env: HashMap<String, String> = vars
            .iter()
            .map(|v| (v.clone(), plausible(v).to_string()))
            .collect();
        let result = render(&source, &env);
        if file == BOB {
            let e = result.expect_err("bob's swapped split arguments must fail");
            assert_eq!((e.line, e.column), (42, 17), "{e}");
            assert!(
                e.message.contains("join") && e.message.contains("[]string"),
                "{e}"
            );
            let mut fixed_env = env.clone();
            fixed_env.remove("CONSUL_SERVICE_TAGS");
            render(&source, &fixed_env).unwrap_or_else(|e| panic!("{file}: {e}"));
        } else {
            let out = result.unwrap_or_else(|e| panic!("{file} with {vars:?}: {e}"));
            assert!(!out.contains("<no value>"), "{file}");
        }
    }
}

#[test]
fn corpus_special_constructs_render_as_containerpilot_would() {
    let read = |f: &str| std::fs::read_to_string(format!("{CORPUS}/{f}")).expect("corpus file");
    // `{{`...`}}` passes a literal action through for consul-template.
    let source = read("v3/Smithx10__etcd__etc_containerpilot.json5");
    let out = render(&source, &env(&[("CONSUL_AGENT", "1")])).expect("render");
    assert!(
        out.contains(r#"-bind={{ GetInterfaceIP \"eth0\" }}"#),
        "{out}"
    );
    // `range loop` over SERVICE_NAME_0..29 emits one job per set name.
    let source = read("v3/kieranajp__colossal__etc_containerpilot.json5");
    let out = render(
        &source,
        &env(&[("SERVICE_NAME_3", "web"), ("APP_TAGS", "a,b")]),
    )
    .expect("render");
    assert!(out.contains("name: \"reload-web\""), "{out}");
    assert_eq!(out.matches("name: \"reload-").count(), 1);
    assert!(out.contains(r#"tags: [ "a", "b",  ],"#), "{out}");
    assert!(out.contains("\"-datacenter=dc1\""), "{out}");
    // The correct split/join pipeline in the other caseywebdev config.
    let source = read("v3/caseywebdev__consul-lb__etc_containerpilot.json5");
    if source.contains("split \",\" | join") {
        let out = render(&source, &env(&[("CONSUL_SERVICE_TAGS", "a,b")])).expect("render");
        assert!(out.contains(r#""a", "b""#), "{out}");
    }
}

// ---- limits (issue 14, defect 7): a runaway template fails, fast ----

#[test]
fn nested_ranges_stop_at_the_iteration_limit() {
    let e = err("{{ range loop 1000 }}{{ range loop 1000 }}x{{ end }}{{ end }}");
    assert!(e.message.contains("`range` iterations"), "{e}");
    assert_eq!((e.line, e.column), (1, 25), "{e}");
}

#[test]
fn huge_widths_in_a_loop_stop_at_the_output_limit() {
    let e = err("{{ range loop 100 }}{{ printf \"%1000000s\" \"\" }}{{ end }}");
    assert!(e.message.contains("longer than 4 MiB"), "{e}");
    // One verb may be wide; a format of many wide verbs may not.
    let many = "%1000000d".repeat(5);
    let e = err(&format!("{{{{ printf \"{many}\" 1 2 3 4 5 }}}}"));
    assert!(
        e.message.contains("printf: the result would be longer"),
        "{e}"
    );
}

#[test]
fn functions_refuse_results_beyond_the_limit_before_making_them() {
    let big = "{{ $s := printf \"%01000000d\" 0 }}";
    for call in [
        "{{ replaceAll \"\" $s $s }}",
        // 5000 `$0` for each of 1000 matches (short input: regex is slow in debug builds).
        "{{ $to := replaceAll \"0\" \"$0\" (printf \"%05000d\" 0) }}\
         {{ regexReplaceAll \"0\" $to (printf \"%01000d\" 0) }}",
        "{{ join $s (split \",\" \"a,b,c,d,e,f\") }}",
    ] {
        let e = err(&format!("{big}{call}"));
        assert!(
            e.message.contains("would be longer than 4 MiB"),
            "{call}: {e}"
        );
    }
}

#[test]
fn copying_big_values_over_and_over_runs_out_of_work() {
    let e =
        err("{{ $s := printf \"%1000000s\" \"\" }}{{ range loop 1000 }}{{ $t := $s }}{{ end }}");
    assert!(e.message.contains("too much work"), "{e}");
}
