//! Writes a self-signed certificate for `localhost` and `127.0.0.1` (rcgen) for the tests:
//! `tls-cert DIR [NAME]` writes `DIR/NAME.crt` and `DIR/NAME.key` (NAME defaults to `tls`).
//! Each run makes a new key, so a second run is a renewal to reload.

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: tls-cert DIR [NAME]"));
    let name = args.next().unwrap_or_else(|| "tls".into());
    let sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let mut params = rcgen::CertificateParams::new(sans).expect("names");
    // A name of its own: OpenSSL looks trusted certificates up by subject.
    params.distinguished_name.push(rcgen::DnType::CommonName, format!("herald test certificate {name}"));
    let signing_key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&signing_key).expect("certificate");
    std::fs::create_dir_all(&dir).expect("create the directory");
    // The key first, so a reader that sees the new certificate also finds its key.
    std::fs::write(dir.join(format!("{name}.key")), signing_key.serialize_pem()).expect("write the key");
    std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).expect("write the certificate");
}
