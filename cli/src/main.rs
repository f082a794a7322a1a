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
    // A CLI whose reader went away (`daf show FILE | head`) should stop
    // quietly, as `cat` and `grep` do: Rust ignores SIGPIPE, so every print
    // would fail with EPIPE and `print!` would panic. Restoring the default
    // action ends the process silently at the first write to a closed pipe.
    #[cfg(unix)]
    // SAFETY: called first thing, before any thread exists; SIG_DFL is a
    // valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = daf_cli::cli::Cli::parse();
    if let Err(e) = daf_cli::cli::run(cli) {
        eprintln!("daf: {}", e.message);
        std::process::exit(e.code);
    }
}
