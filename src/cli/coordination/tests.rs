use super::*;

fn p(sub: &str, words: &[&str]) -> Result<Command, String> {
    parse(
        sub,
        &words.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    )
}

#[test]
fn kv_and_lock_forms() {
    assert_eq!(
        p("kv", &["get", "/app/x"]).unwrap(),
        Command::KvGet {
            key: "app/x".into()
        }
    );
    assert_eq!(
        p("kv", &["put", "k"]).unwrap(),
        Command::KvPut {
            key: "k".into(),
            value: None
        }
    );
    assert_eq!(
        p("kv", &["cas", "k", "", "v"]).unwrap(),
        Command::KvCas {
            key: "k".into(),
            old: String::new(),
            new: "v".into()
        }
    );
    assert_eq!(
        p("lock", &["acquire", "l", "me"]).unwrap(),
        Command::LockAcquire {
            key: "l".into(),
            value: Some("me".into())
        }
    );
    assert!(
        p("kv", &["cas", "k", "v"])
            .unwrap_err()
            .contains("cas KEY OLD NEW")
    );
    assert!(
        p("kv", &["fetch", "k"])
            .unwrap_err()
            .contains("get|put|cas|delete")
    );
    assert!(p("kv", &["get", "/"]).unwrap_err().contains("not a KV key"));
    assert!(
        p("lock", &["take", "k"])
            .unwrap_err()
            .contains("acquire KEY")
    );
}

#[test]
fn tag_and_meta_forms() {
    let Command::Tags { job, edit } = p("tags", &["db", "add", "primary"]).unwrap() else {
        panic!()
    };
    assert_eq!(job, "db");
    assert_eq!(edit.unwrap().add_tags, ["primary"]);
    assert_eq!(
        p("tags", &["db"]).unwrap(),
        Command::Tags {
            job: "db".into(),
            edit: None
        }
    );
    let Command::Tags { edit, .. } = p("tags", &["db", "set"]).unwrap() else {
        panic!()
    };
    assert_eq!(edit.unwrap().tags, Some(vec![]));
    let Command::Meta { edit, .. } = p("meta", &["db", "set", "role=primary", "x=a=b"]).unwrap()
    else {
        panic!()
    };
    let meta = edit.unwrap().meta;
    assert_eq!(meta["role"].as_deref(), Some("primary"));
    assert_eq!(meta["x"].as_deref(), Some("a=b"));
    assert!(
        p("meta", &["db", "set", "role"])
            .unwrap_err()
            .contains("KEY=VALUE")
    );
    assert!(
        p("meta", &["db", "set", "a b=1"])
            .unwrap_err()
            .contains("letters")
    );
    assert!(p("tags", &["db", "add"]).unwrap_err().contains("usage"));
    assert!(p("tags", &[]).unwrap_err().contains("usage"));
}
