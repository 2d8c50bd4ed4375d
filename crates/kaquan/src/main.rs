//! The `kaquan` binary: parse the command line and hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    kaquan::run(kaquan::Cli::parse())
}
