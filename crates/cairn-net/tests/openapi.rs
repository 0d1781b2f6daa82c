//! Golden test: the OpenAPI document of the REST API
//! (`GET /v1/openapi.json`), pinned as an insta snapshot.
//!
//! The document is the contract curl users and schemathesis
//! (`scripts/schemathesis.sh`) hold nodes to, and it is written from the
//! table in `cairn_net::rest`: a change to the table shows here as a change
//! to the contract. If it is intended, review the diff (`cargo insta
//! review`, or rerun with `INSTA_UPDATE=always` and read `git diff`) and say
//! in docs/design.md what changed for clients.

#[test]
fn the_openapi_document_is_the_contract() {
    let mut doc = cairn_net::rest::openapi();
    // The crate's version is not part of the contract.
    doc.info.version = "VERSION".into();
    insta::assert_snapshot!(doc.to_pretty_json().unwrap());
}
