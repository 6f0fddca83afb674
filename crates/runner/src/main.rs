//! `r2-stress-run`: see the library's documentation and the README.

use clap::Parser;

#[tokio::main]
async fn main() {
    let args = r2_stress_run::Args::parse();
    std::process::exit(r2_stress_run::main_with(args).await);
}
