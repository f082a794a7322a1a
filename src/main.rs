//! The `daf` binary.

use clap::Parser;

fn main() {
    let cli = daf::cli::Cli::parse();
    if let Err(e) = daf::cli::run(cli) {
        eprintln!("daf: {}", e.message);
        std::process::exit(e.code);
    }
}
