//! Property tests: no input makes the loader panic, and every error it reports is located.

use std::path::Path;

use groundwork::inventory::{self, LoadError};
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../../inventory/sdc-example.yaml");

fn check(text: String) -> Result<(), TestCaseError> {
    match inventory::load_str(Path::new("fuzz.yaml"), text.clone()) {
        Ok(_) => {}
        Err(LoadError::Invalid { diagnostics, .. }) => {
            prop_assert!(!diagnostics.is_empty());
            let lines = text.lines().count().max(1);
            for d in &diagnostics {
                prop_assert!(d.location.line >= 1 && d.location.column >= 1, "unlocated: {d:?}");
                prop_assert!(d.location.line <= lines + 1, "line {} beyond the text's {lines}: {d:?}", d.location.line);
                prop_assert!(d.help.is_some(), "no help: {d:?}");
                // Rendering must not panic either.
                let _ = d.render(&text);
            }
        }
        Err(e) => prop_assert!(false, "unexpected error: {e}"),
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    DeleteRange(usize, usize),
    Insert(usize, String),
    SwapLines(usize, usize),
    DuplicateLine(usize),
    Indent(usize, bool),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..40usize).prop_map(|(a, n)| Mutation::DeleteRange(a, n)),
        (
            any::<usize>(),
            prop_oneof![
                Just(": ".to_string()),
                Just("- ".to_string()),
                Just("\t".to_string()),
                Just("{".to_string()),
                Just("]".to_string()),
                Just("\n  ".to_string()),
                Just("&a *a".to_string()),
                Just("'".to_string()),
                Just("---\n".to_string()),
                "[ -~]{1,8}".prop_map(|s| s),
            ]
        )
            .prop_map(|(a, s)| Mutation::Insert(a, s)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<bool>()).prop_map(|(a, more)| Mutation::Indent(a, more)),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let n = lines.len().max(1);
    match m {
        Mutation::DeleteRange(a, len) => {
            let a = a % chars.len().max(1);
            let b = (a + len).min(chars.len());
            chars[..a].iter().chain(&chars[b..]).collect()
        }
        Mutation::Insert(a, s) => {
            let a = a % (chars.len() + 1);
            chars[..a].iter().collect::<String>() + s + &chars[a..].iter().collect::<String>()
        }
        Mutation::SwapLines(a, b) => {
            lines.swap(a % n, b % n);
            lines.join("\n")
        }
        Mutation::DuplicateLine(a) => {
            let l = lines[a % n].clone();
            lines.insert(a % n, l);
            lines.join("\n")
        }
        Mutation::Indent(a, more) => {
            let l = &mut lines[a % n];
            if *more {
                l.insert_str(0, "  ")
            } else {
                *l = l.trim_start().to_string()
            }
            lines.join("\n")
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        check(text)?;
    }

    #[test]
    fn yaml_shaped_text_never_panics(text in "([a-zA-Z]{1,6}: ?(\\[|\\{|-|[0-9a-z./]{0,10})?\n {0,4}){0,20}") {
        check(text)?;
    }

    #[test]
    fn mutated_example_never_panics_and_is_located(ms in proptest::collection::vec(mutation(), 1..4)) {
        let text = ms.iter().fold(EXAMPLE.to_string(), |t, m| apply(&t, m));
        check(text)?;
    }
}
