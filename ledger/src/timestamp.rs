//! RFC 3161 time stamps of checkpoints: a TimeStampReq over the SHA-256 of a checkpoint's
//! note, sent to a time-stamping authority over HTTP, and the check that the answer stamps that
//! digest (status granted, messageImprint and nonce as asked). The TSA's signature and
//! certificate chain are for a relying party to check with its own trust anchors
//! (`openssl ts -verify -data <note> -in <response> -CAfile <TSA's CA>`).

use std::{io::Read as _, time::Duration};

use cmpv2::status::PkiStatus;
use cms::{
    cert::x509::spki::AlgorithmIdentifierOwned, content_info::ContentInfo,
    signed_data::EncapsulatedContentInfo,
};
use der::{
    Any, Decode as _, Encode as _, Reader as _, SliceReader,
    asn1::{Int, OctetString, Uint},
    oid::ObjectIdentifier,
};
use sha2::{Digest as _, Sha256};
use x509_tsp::{MessageImprint, TimeStampReq, TimeStampResp, TspVersion, TstInfo};

use crate::{Hash, LedgerError};

/// id-sha256 (RFC 5758).
const SHA_256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
/// id-signedData (RFC 5652).
const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// id-ct-TSTInfo (RFC 3161).
const TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");

/// The most a TSA's answer may be: a token with a certificate chain is a few kilobytes.
const MAX_RESPONSE: u64 = 1 << 20;

/// A TimeStampReq and what its answer must match.
#[derive(Debug, Clone)]
pub struct TimestampRequest {
    /// The request, DER.
    pub der: Vec<u8>,
    /// The SHA-256 of the stamped message.
    pub digest: Hash,
    /// The nonce the answer must repeat.
    pub nonce: u64,
}

impl TimestampRequest {
    /// A request for `message`'s SHA-256 with a random nonce, asking for the TSA's certificate
    /// in the token (so that the token can be checked on its own).
    pub fn new(message: &[u8]) -> Result<TimestampRequest, LedgerError> {
        let mut nonce = [0u8; 8];
        getrandom::getrandom(&mut nonce)
            .map_err(|e| LedgerError::BadTimestamp(format!("no randomness for a nonce: {e}")))?;
        let nonce = u64::from_be_bytes(nonce);
        let digest: Hash = Sha256::digest(message).into();
        let request = TimeStampReq {
            version: TspVersion::V1,
            message_imprint: imprint(&digest)?,
            req_policy: None,
            nonce: Some(int(nonce)?),
            cert_req: true,
            extensions: None,
        };
        Ok(TimestampRequest {
            der: request.to_der().map_err(der_error)?,
            digest,
            nonce,
        })
    }

    /// Checks a TSA's TimeStampResp (DER) against this request: granted, a signed TSTInfo
    /// whose messageImprint is this digest (SHA-256) and whose nonce is this nonce. Returns the
    /// token's time.
    pub fn check(&self, response: &[u8]) -> Result<jiff::Timestamp, LedgerError> {
        let info = stamped_info(response)?;
        if info.nonce != Some(int(self.nonce)?) {
            return Err(LedgerError::BadTimestamp(
                "the nonce is not the request's".into(),
            ));
        }
        check_imprint(&info, &self.digest)
    }
}

/// Checks that a stored TimeStampResp stamps `message` (its SHA-256); returns the token's time.
pub fn check_response(response: &[u8], message: &[u8]) -> Result<jiff::Timestamp, LedgerError> {
    let digest: Hash = Sha256::digest(message).into();
    check_imprint(&stamped_info(response)?, &digest)
}

/// Asks the TSA at `url` to stamp `message` (HTTP POST, `application/timestamp-query`),
/// waiting at most `timeout`; returns the checked TimeStampResp (DER), to keep with the
/// checkpoint, and its time.
pub fn request_timestamp(
    url: &str,
    message: &[u8],
    timeout: Duration,
) -> Result<(Vec<u8>, jiff::Timestamp), LedgerError> {
    let failed = |message: String| LedgerError::Timestamp {
        url: url.to_string(),
        message,
    };
    let request = TimestampRequest::new(message)?;
    let client = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| failed(format!("no HTTP client: {e}")))?;
    let answer = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/timestamp-query")
        .body(request.der.clone())
        .send()
        .map_err(|e| failed(format!("request failed: {e}")))?;
    if !answer.status().is_success() {
        return Err(failed(format!("answered {}", answer.status())));
    }
    let mut response = Vec::new();
    answer
        .take(MAX_RESPONSE + 1)
        .read_to_end(&mut response)
        .map_err(|e| failed(format!("reading the answer: {e}")))?;
    if response.len() as u64 > MAX_RESPONSE {
        return Err(failed(format!("an answer over {MAX_RESPONSE} bytes")));
    }
    let time = request
        .check(&response)
        .map_err(|e| failed(e.to_string()))?;
    Ok((response, time))
}

fn imprint(digest: &Hash) -> Result<MessageImprint, LedgerError> {
    Ok(MessageImprint {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: SHA_256,
            parameters: None,
        },
        hashed_message: OctetString::new(digest.to_vec()).map_err(der_error)?,
    })
}

fn int(value: u64) -> Result<Int, LedgerError> {
    Ok(Int::from(
        Uint::new(&value.to_be_bytes()).map_err(der_error)?,
    ))
}

/// The TSTInfo inside a granted response's token.
fn stamped_info(response: &[u8]) -> Result<TstInfo, LedgerError> {
    let bad = |message: &str| LedgerError::BadTimestamp(message.to_string());
    let response = TimeStampResp::from_der(response).map_err(der_error)?;
    if !matches!(
        response.status.status,
        PkiStatus::Accepted | PkiStatus::GrantedWithMods
    ) {
        return Err(LedgerError::BadTimestamp(format!(
            "the TSA refused: {:?} {:?}",
            response.status.status, response.status.status_string
        )));
    }
    let token: ContentInfo = response
        .time_stamp_token
        .ok_or_else(|| bad("granted, but no token"))?;
    if token.content_type != SIGNED_DATA {
        return Err(bad("the token is not CMS SignedData"));
    }
    let content = signed_content(&token.content.to_der().map_err(der_error)?)?;
    if content.econtent_type != TST_INFO {
        return Err(bad("the token does not hold a TSTInfo"));
    }
    let content = content
        .econtent
        .ok_or_else(|| bad("the token's TSTInfo is missing"))?;
    let octets: OctetString = content.decode_as().map_err(der_error)?;
    TstInfo::from_der(octets.as_bytes()).map_err(der_error)
}

/// The encapsulated content of a CMS SignedData (DER). The certificates and signer infos after
/// it are skipped, not parsed: they are for the signature check (`openssl ts -verify`), and
/// strict DER would refuse some TSAs' tokens over them (openssl's own puts the TSA certificate
/// in twice when it is both `signer_cert` and in `certs`, a SET OF with a repeat).
fn signed_content(signed_data: &[u8]) -> Result<EncapsulatedContentInfo, LedgerError> {
    let mut reader = SliceReader::new(signed_data).map_err(der_error)?;
    let content = reader
        .sequence(|fields| {
            let _version = Int::decode(fields)?;
            let _digest_algorithms = Any::decode(fields)?;
            let content = EncapsulatedContentInfo::decode(fields)?;
            fields.read_slice(fields.remaining_len())?;
            Ok(content)
        })
        .map_err(der_error)?;
    reader.finish(content).map_err(der_error)
}

fn check_imprint(info: &TstInfo, digest: &Hash) -> Result<jiff::Timestamp, LedgerError> {
    let imprint = &info.message_imprint;
    if imprint.hash_algorithm.oid != SHA_256 {
        return Err(LedgerError::BadTimestamp(format!(
            "the token stamps a {} digest, not SHA-256",
            imprint.hash_algorithm.oid
        )));
    }
    if imprint.hashed_message.as_bytes() != digest {
        return Err(LedgerError::BadTimestamp(
            "the token's message imprint is not this checkpoint's digest".into(),
        ));
    }
    let seconds = info.gen_time.to_unix_duration().as_secs();
    jiff::Timestamp::from_second(seconds as i64)
        .map_err(|e| LedgerError::BadTimestamp(format!("the token's time: {e}")))
}

fn der_error(error: der::Error) -> LedgerError {
    LedgerError::BadTimestamp(format!("DER: {error}"))
}
