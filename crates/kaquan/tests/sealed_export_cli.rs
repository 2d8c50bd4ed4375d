//! `kaquan export cards --with-secrets --seal-to age1…`: the file opens
//! with the `age` tool and the print shop's key, and holds what the
//! unsealed export holds; a key that is not an age recipient is refused
//! and writes nothing.

mod common;

use common::{fails_saying, Env};
use std::process::Command;

#[test]
fn an_export_sealed_to_a_print_shop_opens_with_its_key() {
    let env = Env::sqlite();
    env.setup();
    env.run(&["batch", "generate", "--quantity", "5"]);
    let identity = env.dir.join("shop.txt");
    let made = Command::new("age-keygen")
        .arg("-o")
        .arg(&identity)
        .output()
        .expect("age-keygen (Debian package age) is installed");
    assert!(made.status.success());
    let text = std::fs::read_to_string(&identity).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap();
    let plain = env.dir.join("cards.csv");
    let sealed = env.dir.join("cards.csv.age");
    let export = |output: &std::path::Path, seal: Option<&str>| {
        let mut args = common::export_passwords_args(output.to_str().unwrap()).to_vec();
        if let Some(recipient) = seal {
            args.extend(["--seal-to", recipient]);
        }
        env.command(&args)
    };
    assert!(export(&plain, None).status().unwrap().success());
    assert!(export(&sealed, Some(recipient)).status().unwrap().success());
    assert!(std::fs::read(&sealed)
        .unwrap()
        .starts_with(b"age-encryption.org/v1\n"));
    let opened = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&identity)
        .arg(&sealed)
        .output()
        .unwrap();
    assert!(opened.status.success(), "{opened:?}");
    assert_eq!(opened.stdout, std::fs::read(&plain).unwrap());
    let leftovers: Vec<_> = std::fs::read_dir(&env.dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("kaquan-plain"))
        .collect();
    assert!(leftovers.is_empty(), "no plaintext is left beside it");
    let refused = env.dir.join("refused.csv");
    fails_saying(export(&refused, Some("age1notakey")), "age1 开头");
    assert!(!refused.exists());
    let audit = env.run(&[
        "audit",
        "export",
        "--from",
        "2000-01-01",
        "--to",
        "2199-12-31",
    ]);
    let audit = String::from_utf8(audit.stdout).unwrap();
    assert!(audit.contains(&format!("sealed_to={recipient}")), "{audit}");
}
