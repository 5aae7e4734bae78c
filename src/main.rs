//! The `contact-gateway` binary: see [`contact_gateway::cli`].
use contact_gateway::cli::{self, Cli};

/// mimalloc instead of the system allocator: a bulk load or a busy server allocates and frees
/// millions of small values, where glibc's malloc spent some 40% of the time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::from_args();
    cli::init_logging(cli.log_format);
    match cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
