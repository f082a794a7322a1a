//! # daf-butler
//!
//! The data butler: repositories chained to their parents, `get` / `put` /
//! `query_metadata` / `subset` / `data_ref` over them, a file registry with
//! checksums, and ingest.
//!
//! Depends on `daf-base`, `daf-storages`, `daf-formatters` and `daf-mappers`.
