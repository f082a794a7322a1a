//! # daf-cli
//!
//! The `daf` command line, packaged apart from the library so that users of
//! the `daf` facade do not compile clap, indicatif, mimalloc or plotters.
//! The binary (`src/main.rs`, installed as `daf`) only parses the arguments
//! and calls [`cli::run`]; this library holds everything it runs:
//!
//! * [`cli`] — the argument definitions ([`cli::Cli`], one module per area:
//!   butler, lifecycle, registry, policy, harness, show, boost, bench) and the
//!   dispatch ([`cli::run`], or [`cli::run_with_registry`] for a binary that
//!   adds its own harness stages, as `examples/custom_stages.rs` does);
//! * [`mod@bench`] — the measurements behind `daf bench AREA` and the criterion
//!   benches (`benches/`), each a ratio against a reference measured in the
//!   same run;
//! * [`demo`] — `daf demo`, the main job on embedded defaults.
//!
//! Start reading at [`cli::Command`] (every subcommand, with its arguments
//! type) and follow one subcommand into its area's module. The library
//! itself is the `daf` crate and its members (`daf-base` … `daf-harness`).
//!
//! The tests (`tests/`) run the built binary; their fixtures are the
//! workspace's `tests/data` (`tests/data` here is a link to it).

pub mod bench;
pub mod cli;
pub mod demo;
