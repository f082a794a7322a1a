//! The `daf` binary.
//!
//! It allocates with mimalloc: a butler `get` of a small dataset makes ~100
//! small allocations, and mimalloc serves them about twice as fast as glibc's
//! malloc (the library itself does not choose an allocator; applications
//! embedding it may do the same).

use clap::Parser;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = daf::cli::Cli::parse();
    if let Err(e) = daf::cli::run(cli) {
        eprintln!("daf: {}", e.message);
        std::process::exit(e.code);
    }
}
