//! Opening a client: the config, the passphrase, and a login to every node
//! at once, so that a wrong passphrase is reported as one, not as "no node
//! reachable".

use anyhow::{Context, Result, bail};
use cairn_client::Client;
use cairn_net::NodeAddress;
use cairn_net::protocol::ErrorCode;

use super::error::node_failure;
use super::options::Options;
use super::output::Output;

/// Loads the config and passphrase, opens the client and logs in to every
/// node.
pub async fn open(options: &Options) -> Result<Client> {
    let path = options.config.path()?;
    let config = options.config.load()?;
    let passphrase = options.passphrase.get(&config.user)?;
    let mut client = Client::open(config, passphrase.as_bytes())
        .await
        .with_context(|| format!("cannot open the client of {}", path.display()))?;
    client.set_direct_io(crate::direct_io::from_env());
    check_login(&client, &config.user, &options.output).await?;
    Ok(client)
}

/// Runs `op` on an open client, then closes the client whatever `op`
/// returned.
pub async fn with_client<T>(options: &Options, op: impl AsyncFnOnce(&Client) -> T) -> Result<T> {
    let client = open(options).await?;
    let result = op(&client).await;
    client.close().await;
    Ok(result)
}

/// What one node made of a login.
pub enum Login {
    /// The node knows the user and the passphrase.
    Accepted,
    /// Wrong passphrase, or no such user on the node.
    Refused,
    /// The node could not be asked: `URL: why`.
    Unreachable(String),
}

/// Connects and logs in to every node; returns each node's outcome.
pub async fn logins(client: &Client) -> Vec<(NodeAddress, Login)> {
    let cluster = client.cluster();
    cluster
        .connect_all()
        .await
        .into_iter()
        .enumerate()
        .map(|(i, result)| {
            let address = cluster.address(i).clone();
            let login = match result {
                Ok(()) => Login::Accepted,
                Err(e) if e.code() == Some(ErrorCode::Unauthorized) => Login::Refused,
                Err(e) => Login::Unreachable(node_failure(&address, &e)),
            };
            (address, login)
        })
        .collect()
}

/// Fails unless some node accepts the login, naming what each refused or
/// unreachable node did; warns about those when another node accepted.
async fn check_login(client: &Client, user: &str, out: &Output) -> Result<()> {
    let outcomes = logins(client).await;
    let refused: Vec<String> = outcomes
        .iter()
        .filter(|(_, l)| matches!(l, Login::Refused))
        .map(|(a, _)| a.url())
        .collect();
    let unreachable: Vec<String> = outcomes
        .iter()
        .filter_map(|(_, l)| match l {
            Login::Unreachable(why) => Some(why.clone()),
            _ => None,
        })
        .collect();
    let accepted = outcomes.len() - refused.len() - unreachable.len();
    if accepted == 0 {
        if unreachable.is_empty() {
            bail!(
                "wrong passphrase for {user}, or {user} is not a user of these nodes: \
                 every node refused the login ({})",
                refused.join(", ")
            );
        }
        if refused.is_empty() {
            bail!("no node could be reached: {}", unreachable.join("; "));
        }
        bail!(
            "no node accepted {user}: refused by {} (wrong passphrase, or no such user there); \
             unreachable: {}",
            refused.join(", "),
            unreachable.join("; ")
        );
    }
    for node in &refused {
        out.warn(&format!(
            "{node} refused the login of {user}: wrong passphrase, or {user} is not a user there"
        ));
    }
    for why in &unreachable {
        out.warn(&format!("cannot reach {why}"));
    }
    Ok(())
}
