//! A CA and a server certificate for 127.0.0.1 made per test (rcgen), for
//! the TLS registry and the HTTPS Git server.

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// The test CA: its PEM (what a Secret's `ca.crt` holds) and what signs.
pub(crate) struct Ca {
    pub pem: String,
    pub issuer: Issuer<'static, KeyPair>,
}

/// A server certificate for `localhost` and `127.0.0.1`, signed by the CA.
pub(crate) struct Server {
    pub cert: Certificate,
    pub key: KeyPair,
}

pub(crate) fn ca_and_server() -> (Ca, Server) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sluice test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().expect("CA key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);

    let mut server = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server params");
    server
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().expect("server key");
    let cert = server.signed_by(&key, &issuer).expect("server cert");
    (
        Ca {
            pem: ca_cert.pem(),
            issuer,
        },
        Server { cert, key },
    )
}
