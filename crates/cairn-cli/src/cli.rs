//! The command line, as clap parses it.

use clap::{Args, Parser, Subcommand};

/// cairn: a secure, distributed, content-addressed file store.
///
/// cairn cuts files into content-defined chunks, compresses and encrypts
/// them on the client, and erasure-codes them into shards spread over
/// several storage nodes, so that any k of n shards give a file back and no
/// node can read what it stores. Every byte read back is checked against a
/// hash before it is used.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// cairn's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the storage pipeline at work: seal a 64 MiB file into shards
    /// over four stores, destroy two of them, and rebuild the file bit for
    /// bit.
    ///
    /// Everything happens in a temporary directory that is removed at the
    /// end; nothing is left behind and nothing needs configuring.
    Demo(DemoArgs),
}

/// Options of `cairn demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Size of the generated file, in MiB.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub size_mib: u64,

    /// Keep the temporary directory (and say where it is) instead of
    /// removing it.
    #[arg(long)]
    pub keep: bool,
}
