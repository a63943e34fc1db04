//! TLS for `https://`: the trusted CAs, the client identity and the rustls
//! setup.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::sync::Arc;

/// Trust and identity for `https://`.
#[derive(Default)]
pub struct TlsOptions {
    /// Trusted in addition to the system's CA certificates.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// A client certificate chain and its key, for agents that verify
    /// their clients.
    pub identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    /// Accept any server certificate (Consul's `tls.verify: false`).
    pub accept_invalid_certs: bool,
}

/// Every certificate in a PEM bundle; `None` when there is none or the
/// PEM is damaged.
pub fn pem_certs(pem: &[u8]) -> Option<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .ok()
        .filter(|c| !c.is_empty())
}

/// The certificates and the private key (PKCS#8, RSA or EC) in `pem`.
pub fn pem_identity(
    pem: &[u8],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let certs = pem_certs(pem).ok_or("no PEM certificate found")?;
    let key = PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM private key found".to_string(),
        e => format!("the private key cannot be read: {e}"),
    })?;
    Ok((certs, key))
}

/// The rustls setup: ring's primitives, TLS 1.2 and 1.3, the system's CAs
/// plus `options`' own.
pub(super) fn build_tls(options: Option<&TlsOptions>) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let builder = if options.is_some_and(|o| o.accept_invalid_certs) {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            log::debug!("http: system CA certificates: {e}");
        }
        roots.add_parsable_certificates(native.certs);
        for cert in options.map(|o| o.extra_roots.as_slice()).unwrap_or(&[]) {
            roots
                .add(cert.clone())
                .map_err(|e| format!("cannot use the CA certificate: {e}"))?;
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match options.and_then(|o| o.identity.as_ref()) {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs.clone(), key.clone_key())
            .map_err(|e| format!("cannot use the client certificate: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Consul's `tls.verify: false`: any certificate is accepted, signatures
/// are still checked against it (as Go's InsecureSkipVerify does).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
