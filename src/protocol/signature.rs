//! HMAC-SHA256 signatures: channel auth, user signin, REST requests and webhooks.
//! Comparisons are constant-time; must not log or return the expected signature.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Lowercase hex HMAC-SHA256 of `message` keyed with `secret`.
pub fn sign(secret: &str, message: &str) -> String {
    hex::encode(mac(secret, message.as_bytes()).finalize().into_bytes())
}

/// Lowercase hex HMAC-SHA256 of raw bytes (webhook bodies).
pub fn sign_bytes(secret: &str, message: &[u8]) -> String {
    hex::encode(mac(secret, message).finalize().into_bytes())
}

fn mac(secret: &str, message: &[u8]) -> HmacSha256 {
    // unwrap: HMAC accepts keys of any length.
    let mut m = HmacSha256::new_from_slice(secret.as_bytes()).unwrap();
    m.update(message);
    m
}

/// Whether `signature_hex` is the HMAC of `message`, compared in constant time.
/// Upper- and lower-case hex are both accepted.
pub fn verify(secret: &str, message: &str, signature_hex: &str) -> bool {
    let Ok(given) = hex::decode(signature_hex) else {
        return false;
    };
    mac(secret, message.as_bytes()).verify_slice(&given).is_ok()
}

/// Whether two secrets (an admin token and what a request presented) are equal, in time that
/// does not depend on where they differ: both are hashed first, so even their lengths stay
/// hidden.
pub fn secrets_equal(expected: &str, given: &str) -> bool {
    use sha2::Digest;
    let (a, b) = (sha2::Sha256::digest(expected.as_bytes()), sha2::Sha256::digest(given.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The string a private or encrypted channel subscription signs.
pub fn channel_string(socket_id: &str, channel: &str) -> String {
    format!("{socket_id}:{channel}")
}

/// The string a presence subscription signs (`channel_data` byte-exact as received).
pub fn presence_string(socket_id: &str, channel: &str, channel_data: &str) -> String {
    format!("{socket_id}:{channel}:{channel_data}")
}

/// The string a signin signs (`user_data` byte-exact as received).
pub fn user_string(socket_id: &str, user_data: &str) -> String {
    format!("{socket_id}::user::{user_data}")
}

/// Checks a client's `auth` field (`{app_key}:{hex}`) against `string_to_sign`.
pub fn verify_auth(app_key: &str, secret: &str, auth: &str, string_to_sign: &str) -> bool {
    match auth.split_once(':') {
        Some((key, sig)) => key == app_key && verify(secret, string_to_sign, sig),
        None => false,
    }
}

/// The `auth` value a client would send: `{app_key}:{hex}` (for tests and tools).
pub fn auth_token(app_key: &str, secret: &str, string_to_sign: &str) -> String {
    format!("{app_key}:{}", sign(secret, string_to_sign))
}

/// The canonical string of a signed REST request: `METHOD\nPATH\nk=v&…` with the decoded
/// params, keys lower-cased and sorted, `auth_signature` left out, values unescaped.
pub fn rest_string(method: &str, path: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, &str)> = params
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
        .filter(|(k, _)| k != "auth_signature")
        .collect();
    pairs.sort();
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}\n{}\n{}", method.to_ascii_uppercase(), path, query.join("&"))
}

/// Lowercase hex MD5 of a request body (`body_md5`).
pub fn body_md5(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "278d425bdf160c739803";
    const SECRET: &str = "7ad3773142a6692b25b8";

    #[test]
    fn channel_vectors() {
        let private = channel_string("1234.1234", "private-foobar");
        assert_eq!(sign(SECRET, &private), "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4");
        let user = user_string("1234.1234", r#"{"id":"12345"}"#);
        assert_eq!(sign(SECRET, &user), "4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba");
        let data = r#"{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#;
        let presence = presence_string("1234.1234", "presence-foobar", data);
        assert_eq!(sign(SECRET, &presence), "31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80");
    }

    #[test]
    fn verify_auth_checks_key_and_signature() {
        let s = channel_string("1234.1234", "private-foobar");
        let good = format!("{KEY}:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4");
        assert!(verify_auth(KEY, SECRET, &good, &s));
        assert!(verify_auth(KEY, SECRET, &good.to_uppercase().replacen(&KEY.to_uppercase(), KEY, 1), &s));
        assert!(!verify_auth("other", SECRET, &good, &s));
        assert!(!verify_auth(KEY, SECRET, &good[..good.len() - 1], &s));
        assert!(!verify_auth(KEY, SECRET, "no-colon", &s));
        assert!(!verify_auth(KEY, SECRET, &format!("{KEY}:zz"), &s));
        assert!(!verify_auth(KEY, SECRET, &good, "1234.1234:private-other"));
    }

    fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn rest_vectors() {
        let body = r#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
        assert_eq!(body_md5(body.as_bytes()), "ec365a775a4cd0599faeb73354201b6f");
        let p = params(&[
            ("auth_version", "1.0"),
            ("auth_key", KEY),
            ("body_md5", "ec365a775a4cd0599faeb73354201b6f"),
            ("auth_timestamp", "1353088179"),
            ("auth_signature", "ignored"),
        ]);
        assert_eq!(
            sign(SECRET, &rest_string("post", "/apps/3/events", &p)),
            "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        );
        let p = params(&[
            ("info", "user_count"),
            ("FILTER_BY_PREFIX", "presence-"),
            ("auth_key", KEY),
            ("auth_timestamp", "1353088179"),
            ("auth_version", "1.0"),
        ]);
        assert_eq!(
            sign(SECRET, &rest_string("GET", "/apps/3/channels", &p)),
            "16819168891cb5dfd72b5c7a5d3d602605b26c6ba1930033b5e2eeeb65010291"
        );
        let p = params(&[
            ("auth_key", KEY),
            ("auth_timestamp", "1353088179"),
            ("auth_version", "1.0"),
            ("info", "user_count,subscription_count"),
        ]);
        assert_eq!(
            sign(SECRET, &rest_string("GET", "/apps/3/channels/presence-foobar", &p)),
            "377ee9260ea002a70c0d40cd887d55cb36db9f7f821297f5efacbcce66be356d"
        );
    }

    #[test]
    fn webhook_vector() {
        let body = r#"{"time_ms":1327078148132,"events":[{"name":"channel_occupied","channel":"my-channel"}]}"#;
        assert_eq!(
            sign_bytes(SECRET, body.as_bytes()),
            "c19001ae3963ccb13bf618e5b16ba9848e7e74df0993aa0689168e341c6833cf"
        );
        assert_eq!(body_md5(b"{}"), "99914b932bd37a50b983c5e7c90ae93b");
    }
}
