//! Who is asking: the client (HTTP Basic against the clients file) and the user it asks for
//! (`X-Request-User`, vouched for by `X-Request-Sign`: hex HMAC-SHA256 keyed with the client's
//! secret over `<X-Request-User>:<raw body>`).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The name and password of an `Authorization: Basic` header.
pub fn basic(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = bonnie_core::b64::base64(encoded.trim())?;
    let text = String::from_utf8(decoded).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_string(), password.to_string()))
}

/// The HMAC of a request of `user` with `body`, keyed with the client's secret.
fn mac(secret: &str, user: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(user.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

/// The signature a request of `user` with `body` must carry, as lowercase hex.
pub fn signature(secret: &str, user: &str, body: &[u8]) -> String {
    mac(secret, user, body)
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `given` (hex, any case) is the request's signature; compared in constant time.
pub fn verify(secret: &str, user: &str, body: &[u8], given: &str) -> bool {
    let given = given.trim();
    let Some(bytes) = (0..given.len())
        .step_by(2)
        .map(|i| {
            given
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    mac(secret, user, body).verify_slice(&bytes).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_and_signatures() {
        let header = format!(
            "Basic {}",
            bonnie_core::b64::encode_base64(b"roundcube:pa:ss")
        );
        assert_eq!(
            basic(&header),
            Some(("roundcube".to_string(), "pa:ss".to_string()))
        );
        assert_eq!(basic("Bearer abc"), None);
        assert_eq!(basic("Basic !!!"), None);
        // Python's hmac.new(b"Jefe", b"what do ya want :for nothing?", sha256).hexdigest().
        assert_eq!(
            signature("Jefe", "what do ya want ", b"for nothing?"),
            "e84baac6c4315d53ae6e1241f85096407b81cdd8f67bdec6881c25350a4b3529"
        );
        let sign = signature("s3cret", "jane", b"{}");
        assert!(verify("s3cret", "jane", b"{}", &sign.to_uppercase()));
        assert!(!verify("s3cret", "john", b"{}", &sign));
        assert!(!verify("s3cret", "jane", b"{ }", &sign));
        assert!(!verify("other", "jane", b"{}", &sign));
        assert!(!verify("s3cret", "jane", b"{}", "zz"));
    }
}
