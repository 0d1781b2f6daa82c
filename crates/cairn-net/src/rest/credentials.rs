//! Credentials in the `Authorization` header: HTTP Basic (user, and the
//! base64 of the auth key) or a bearer token from `POST /v1/login`.
//!
//! The client writes them with [`basic_credentials`]; the node reads them
//! with [`Credentials::parse`]. Keys and tokens are zeroized when dropped
//! and never printed.

use data_encoding::{BASE64, BASE64_NOPAD, BASE64URL, BASE64URL_NOPAD};
use zeroize::Zeroizing;

use crate::protocol::{AuthKeyBytes, ErrorBody, ErrorCode};

/// How long a login token stays valid, in seconds.
pub const TOKEN_LIFETIME_SECS: u64 = 3600;

/// What a request's `Authorization` header carries.
pub enum Credentials {
    /// No header: the request is anonymous.
    None,
    /// HTTP Basic: a user and their auth key for this node.
    Basic {
        /// The user name.
        user: String,
        /// The auth key, decoded from the password.
        auth_key: AuthKeyBytes,
    },
    /// A token from `POST /v1/login`.
    Bearer(Zeroizing<String>),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { user, .. } => write!(f, "Basic({user}, [redacted])"),
            Self::Bearer(_) => f.write_str("Bearer([redacted])"),
        }
    }
}

impl Credentials {
    /// Reads the value of an `Authorization` header, if the request has
    /// one.
    ///
    /// # Errors
    /// [`ErrorCode::Unauthorized`] for a header that is neither Basic nor
    /// Bearer, or Basic credentials that do not decode to a user and a
    /// 32-byte key: wrong credentials are never taken as none.
    pub fn parse(header: Option<&[u8]>) -> Result<Self, ErrorBody> {
        let Some(value) = header else {
            return Ok(Self::None);
        };
        let unauthorized = |m: &str| ErrorBody::new(ErrorCode::Unauthorized, m);
        // What HTTP allows in a header value (`HeaderValue::to_str`).
        let visible = value
            .iter()
            .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b));
        let value = std::str::from_utf8(value)
            .ok()
            .filter(|_| visible)
            .ok_or_else(|| unauthorized("unreadable Authorization header"))?;
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            return Ok(Self::Bearer(Zeroizing::new(rest.trim().to_owned())));
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(unauthorized(
                "credentials must be HTTP Basic or a Bearer token",
            ));
        }
        let decoded = Zeroizing::new(
            BASE64
                .decode(rest.trim().as_bytes())
                .map_err(|_| unauthorized("Basic credentials are not base64"))?,
        );
        let text = std::str::from_utf8(&decoded)
            .map_err(|_| unauthorized("Basic credentials are not UTF-8"))?;
        let (user, password) = text
            .split_once(':')
            .ok_or_else(|| unauthorized("Basic credentials need user:password"))?;
        let auth_key = decode_auth_key(password).ok_or_else(|| {
            unauthorized("the password must be the base64 of the user's 32-byte auth key")
        })?;
        Ok(Self::Basic {
            user: user.to_owned(),
            auth_key,
        })
    }
}

/// The value of an `Authorization: Basic` header for `user` and
/// `auth_key`.
pub fn basic_credentials(user: &str, auth_key: &[u8; 32]) -> String {
    let password = BASE64.encode(auth_key);
    format!(
        "Basic {}",
        BASE64.encode(format!("{user}:{password}").as_bytes())
    )
}

/// Decodes the password of Basic credentials into an auth key: base64 in
/// either alphabet, padded or not, of exactly 32 bytes.
pub fn decode_auth_key(password: &str) -> Option<AuthKeyBytes> {
    let password = password.trim().as_bytes();
    [&BASE64, &BASE64_NOPAD, &BASE64URL, &BASE64URL_NOPAD]
        .into_iter()
        .find_map(|encoding| encoding.decode(password).ok())
        .and_then(|mut bytes| {
            let key = <[u8; 32]>::try_from(bytes.as_slice())
                .ok()
                .map(AuthKeyBytes);
            zeroize::Zeroize::zeroize(&mut bytes);
            key
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_keys_decode_in_any_base64_flavour() {
        let key = [0xfb; 32];
        for encoding in [&BASE64, &BASE64_NOPAD, &BASE64URL, &BASE64URL_NOPAD] {
            let text = encoding.encode(&key);
            assert_eq!(decode_auth_key(&text).unwrap().0, key, "{text}");
        }
        assert!(decode_auth_key(&BASE64.encode(&[1; 31])).is_none());
        assert!(decode_auth_key("not base64!").is_none());
    }

    #[test]
    fn basic_credentials_follow_rfc_7617() {
        let header = basic_credentials("alice", &[0; 32]);
        let decoded = BASE64
            .decode(header.strip_prefix("Basic ").unwrap().as_bytes())
            .unwrap();
        let (user, password) = std::str::from_utf8(&decoded)
            .unwrap()
            .split_once(':')
            .unwrap();
        assert_eq!(user, "alice");
        assert_eq!(decode_auth_key(password).unwrap().0, [0; 32]);
    }

    #[test]
    fn the_node_reads_what_the_client_writes() {
        let header = basic_credentials("alice", &[7; 32]);
        let Credentials::Basic { user, auth_key } =
            Credentials::parse(Some(header.as_bytes())).unwrap()
        else {
            panic!("not Basic");
        };
        assert_eq!((user.as_str(), auth_key.0), ("alice", [7; 32]));
        assert!(matches!(
            Credentials::parse(Some(b"bearer  abc ")).unwrap(),
            Credentials::Bearer(token) if *token == "abc"
        ));
        assert!(matches!(Credentials::parse(None), Ok(Credentials::None)));
        for wrong in [
            &b"Digest x"[..],
            b"Basic !!!",
            b"Basic YWxpY2U=",
            b"Basic \xff",
        ] {
            let refused = Credentials::parse(Some(wrong)).unwrap_err();
            assert_eq!(refused.code, ErrorCode::Unauthorized);
        }
        let printed = format!("{:?}", Credentials::parse(Some(header.as_bytes())));
        assert!(!printed.contains("[7"), "{printed}");
    }
}
