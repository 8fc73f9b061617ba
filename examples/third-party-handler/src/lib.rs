//! `login-watch`, an example third-party handler: on every Login it records whether the
//! client address lies in one of the configured trusted networks, and logs a warning through
//! the host when it does not.

use std::net::IpAddr;

use bonnie_plugin_api::prelude::*;
use serde::Deserialize;

/// `[plugins.login-watch]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Trusted networks in CIDR form, such as `10.0.0.0/8` or `::1/128`. Default: loopback.
    #[serde(default = "default_trusted")]
    trusted_networks: Vec<String>,
}

fn default_trusted() -> Vec<String> {
    vec!["127.0.0.0/8".to_string(), "::1/128".to_string()]
}

/// A network in CIDR form.
struct Network {
    address: IpAddr,
    prefix: u32,
}

impl Network {
    fn parse(text: &str) -> Option<Self> {
        let (address, prefix) = text.split_once('/')?;
        let address: IpAddr = address.parse().ok()?;
        let prefix: u32 = prefix.parse().ok()?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        (prefix <= bits).then_some(Self { address, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let mask = |bits: u32, width: u32| -> u128 {
            if bits == 0 { 0 } else { (!0u128 << (width - bits)) & (!0u128 >> (128 - width)) }
        };
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let m = mask(self.prefix, 32);
                u128::from(u32::from(net)) & m == u128::from(u32::from(ip)) & m
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let m = mask(self.prefix, 128);
                u128::from(net) & m == u128::from(ip) & m
            }
            _ => false,
        }
    }
}

/// The handler.
pub struct LoginWatch {
    host: Host,
    trusted: Vec<Network>,
}

impl LoginWatch {
    /// Reads and checks the trusted networks.
    pub fn new(host: Host) -> Result<Self, PluginError> {
        let settings: Settings = host.config()?;
        let mut trusted = Vec::new();
        for text in &settings.trusted_networks {
            match Network::parse(text) {
                Some(network) => trusted.push(network),
                None => {
                    return Err(PluginError::config(format!(
                        "[plugins.login-watch] trusted_networks: {text:?} is not a network in CIDR form"
                    )));
                }
            }
        }
        Ok(Self { host, trusted })
    }
}

impl Handler for LoginWatch {
    fn events(&self) -> Vec<String> {
        vec!["Login".to_string()]
    }

    fn handle(&self, job: &Job) -> Result<HandlerOutcome, PluginError> {
        let mut notification: serde_json::Value = serde_json::from_str(job.notification.as_str())
            .map_err(|e| PluginError::rejected(format!("the notification is not JSON: {e}")))?;
        let client = notification.get("clientIP").and_then(|v| v.as_str()).and_then(|ip| ip.parse::<IpAddr>().ok());
        let trusted = client.is_some_and(|ip| self.trusted.iter().any(|n| n.contains(ip)));
        if !trusted {
            let user = notification.get("user").and_then(|v| v.as_str()).unwrap_or("").to_string();
            let from = client.map(|ip| ip.to_string()).unwrap_or_else(|| "an unknown address".to_string());
            self.host.warn("Login from outside the trusted networks.", &[("user", &user), ("client", &from)]);
        }
        if let Some(object) = notification.as_object_mut() {
            object.insert("login_watch".to_string(), serde_json::json!({ "trusted": trusted }));
        }
        Ok(HandlerOutcome::done(notification.to_string()))
    }
}

bonnie_plugin_api::export_handler! {
    name: "login-watch",
    description: "Marks logins from outside the trusted networks.",
    new: LoginWatch::new,
}

#[cfg(test)]
mod tests {
    use bonnie_plugin_api::testing::TestHost;

    use super::*;

    #[test]
    fn a_login_from_outside_is_marked_and_warned_about() {
        let host = TestHost::new("login-watch")
            .config(serde_json::json!({ "trusted_networks": ["10.0.0.0/8"] }));
        let handler = host.handler(LoginWatch::new).unwrap();
        let outcome = handler
            .handle(r#"{"event":"Login","user":"john","clientIP":"192.0.2.7"}"#)
            .unwrap();
        let HandlerOutcome::Done { notification } = outcome else {
            panic!("{outcome:?}");
        };
        let notification: serde_json::Value = serde_json::from_str(&notification).unwrap();
        assert_eq!(notification["login_watch"]["trusted"], false);
        let warnings = host.logs_at(LogLevel::Warn);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].fields["client"], "192.0.2.7");
    }

    #[test]
    fn a_network_that_is_not_cidr_stops_the_start() {
        let host = TestHost::new("login-watch")
            .config(serde_json::json!({ "trusted_networks": ["10.0.0.0"] }));
        let error = host.handler(LoginWatch::new).err().unwrap();
        assert!(error.message.contains("not a network in CIDR form"), "{error}");
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let net = Network::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(Network::parse("::1/128").unwrap().contains("::1".parse().unwrap()));
        assert!(Network::parse("0.0.0.0/0").unwrap().contains("192.0.2.1".parse().unwrap()));
        assert!(Network::parse("10.0.0.0/33").is_none());
    }
}
