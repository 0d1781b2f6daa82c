//! Log lines on stderr, for the node daemon and the client commands alike:
//! `RUST_LOG` overrides the level each starts with.

use std::io::IsTerminal;

/// Who is logging, which sets the default level and the line's shape.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Logger {
    /// A node: `info` and up, each line with its time (a daemon's log).
    Node,
    /// A client command: warnings only (an index entry that does not open,
    /// say), without times; `RUST_LOG=debug` shows every node that failed
    /// and why.
    Client,
}

/// Installs the subscriber for `logger` (a second call does nothing).
pub(crate) fn init(logger: Logger) {
    let default = match logger {
        Logger::Node => "info",
        Logger::Client => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match logger {
        Logger::Node => builder.try_init(),
        Logger::Client => builder.without_time().try_init(),
    };
}
