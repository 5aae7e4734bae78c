//! The `contact-gateway` binary: see [`contact_gateway::cli`].
use contact_gateway::cli::{self, Cli};

/// mimalloc instead of the system allocator: a bulk load or a busy server allocates and frees
/// millions of small values, where glibc's malloc spent some 40% of the time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tells mimalloc to keep the memory it frees instead of handing it back to the kernel (by
/// default after a second). A bulk load frees and allocates the same few hundred megabytes
/// batch after batch; handed back, each batch faulted it in again and the kernel zeroed
/// every page (a sixth of an import's CPU time). The server keeps the default.
fn keep_freed_memory() {
    // `mi_option_purge_delay` in the `mi_option_t` enum of mimalloc 3 (`mimalloc.h`), which
    // libmimalloc-sys 0.1.49 builds but does not name. -1: never purge.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets an option value, which mimalloc reads when it next decides to purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::from_args();
    if cli.loads_in_bulk() {
        keep_freed_memory();
    }
    cli::init_logging(cli.log_format);
    match cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
