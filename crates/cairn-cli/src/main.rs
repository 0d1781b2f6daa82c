//! The `cairn` command: one binary for storage nodes, clients and the demo.
//!
//! `main` parses the command line, runs the command and turns its outcome
//! into an exit status: 0 on success, 1 on failure (the error and its causes
//! printed on stderr), 2 on bad usage (clap's own, and the checks made after
//! parsing that [`client::UsageError`] reports).

mod bench;
mod cli;
mod client;
mod demo;
mod direct_io;
mod logging;
mod node;
mod units;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Client(command) => client::run(cli.global, command),
        cli::Command::Demo(args) => demo::run(&args),
        cli::Command::Node(cli::NodeCommand::Status { dir, json }) => {
            // `cairn --json node status` means the same as `… status --json`.
            node::run(cli::NodeCommand::Status {
                dir,
                json: json || cli.global.json,
            })
        }
        cli::Command::Node(cli::NodeCommand::Scrub { dir, rate, json }) => {
            node::run(cli::NodeCommand::Scrub {
                dir,
                rate,
                json: json || cli.global.json,
            })
        }
        cli::Command::Node(cli::NodeCommand::User(cli::UserCommand::List { dir, json })) => {
            node::run(cli::NodeCommand::User(cli::UserCommand::List {
                dir,
                json: json || cli.global.json,
            }))
        }
        cli::Command::Node(command) => node::run(command),
        cli::Command::Bench(cli::BenchArgs {
            command: Some(cli::BenchCommand::Node(args)),
            ..
        }) => bench::node(&args),
        cli::Command::Bench(cli::BenchArgs {
            command: Some(cli::BenchCommand::Index(args)),
            ..
        }) => bench::index(&args),
        cli::Command::Bench(cli::BenchArgs {
            command: None,
            cluster,
        }) => bench::cluster(&cluster),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(usage) = err.downcast_ref::<client::UsageError>() {
                eprintln!("error: {usage}\n\nFor more information, try '--help'.");
                return ExitCode::from(2);
            }
            // A closed pipe (`cairn … | head`) is not a failure worth a message.
            let broken_pipe = err.chain().any(|cause| {
                cause
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if !broken_pipe {
                eprintln!("error: {err:#}");
            }
            ExitCode::FAILURE
        }
    }
}
