//! `schema.graphql` is what the server serves.

#[test]
fn checked_in_schema_matches_the_served_one() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_contact-gateway"))
        .arg("schema")
        .output()
        .expect("run contact-gateway schema");
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).expect("utf-8");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        printed == checked_in,
        "schema.graphql is out of date: run `cargo run -- schema > schema.graphql`"
    );
}
