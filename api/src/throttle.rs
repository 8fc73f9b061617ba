//! Failed logins, counted per client name and per address, with an exponential back-off:
//! after `free` failures within the window a key is refused (429 with `Retry-After`) for
//! `base`, then twice as long at each further failure, up to `max`. The tables are bounded:
//! names are only counted for clients of the clients file, and addresses (IPv6 by /64,
//! what one host commonly holds) in a table of at most `capacity` entries, the stalest
//! dropped first, so an attacker rotating names or addresses cannot grow them.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// How failed logins are limited.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Failures a key may have before it is refused.
    pub free: u32,
    /// The first refusal's length; each further failure doubles it.
    pub base: Duration,
    /// The longest refusal.
    pub max: Duration,
    /// Failures older than this are forgotten.
    pub window: Duration,
    /// Most addresses tracked at once.
    pub capacity: usize,
}

/// What is known of one key's failures.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

/// The failed-login tables.
pub struct Throttle {
    policy: Policy,
    tables: Mutex<Tables>,
}

#[derive(Default)]
struct Tables {
    names: HashMap<String, Failures>,
    addresses: HashMap<IpAddr, Failures>,
}

/// The key an address is counted under: IPv4 as it is, IPv6 by its /64 network.
pub fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let segments = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(
                    segments[0],
                    segments[1],
                    segments[2],
                    segments[3],
                    0,
                    0,
                    0,
                    0,
                ))
            }
        },
    }
}

impl Throttle {
    /// Empty tables under `policy`.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            tables: Mutex::new(Tables::default()),
        }
    }

    /// How long the name (`None`: not a client, never counted) or the address is still
    /// refused, if it is.
    pub fn refused_for(&self, name: Option<&str>, address: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        let left = |f: Option<&Failures>| {
            f.and_then(|f| f.blocked_until)
                .and_then(|until| until.checked_duration_since(now))
                .filter(|d| !d.is_zero())
        };
        let by_name = left(name.and_then(|n| tables.names.get(n)));
        let by_address = left(tables.addresses.get(&address_key(address)));
        by_name.max(by_address)
    }

    /// Counts a failed login of `name` (a client's, or `None`) from `address`.
    pub fn failed(&self, name: Option<&str>, address: IpAddr) {
        let now = Instant::now();
        let policy = &self.policy;
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(name) = name {
            let entry = tables.names.entry(name.to_string()).or_insert(Failures {
                count: 0,
                last: now,
                blocked_until: None,
            });
            count(policy, entry, now);
        }
        let key = address_key(address);
        if !tables.addresses.contains_key(&key) && tables.addresses.len() >= policy.capacity {
            make_room(policy, &mut tables.addresses, now);
        }
        let entry = tables.addresses.entry(key).or_insert(Failures {
            count: 0,
            last: now,
            blocked_until: None,
        });
        count(policy, entry, now);
    }

    /// A successful login of `name` from `address` forgets their failures.
    pub fn succeeded(&self, name: &str, address: IpAddr) {
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        tables.names.remove(name);
        tables.addresses.remove(&address_key(address));
    }

    /// Entries in the tables (names, addresses).
    pub fn tracked(&self) -> (usize, usize) {
        let tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        (tables.names.len(), tables.addresses.len())
    }
}

/// One more failure of a key: forgotten first if the last was outside the window, refused
/// once past the free ones.
fn count(policy: &Policy, entry: &mut Failures, now: Instant) {
    if now.duration_since(entry.last) > policy.window {
        entry.count = 0;
        entry.blocked_until = None;
    }
    entry.count = entry.count.saturating_add(1);
    entry.last = now;
    if entry.count > policy.free {
        let doublings = (entry.count - policy.free - 1).min(30);
        let length = policy.base.saturating_mul(1 << doublings).min(policy.max);
        entry.blocked_until = Some(now + length);
    }
}

/// Drops the entries whose failures are forgotten; if none is, the one heard from longest ago.
fn make_room(policy: &Policy, table: &mut HashMap<IpAddr, Failures>, now: Instant) {
    table.retain(|_, f| {
        now.duration_since(f.last) <= policy.window
            || f.blocked_until.is_some_and(|until| until > now)
    });
    if table.len() >= policy.capacity
        && let Some(stalest) = table.iter().min_by_key(|(_, f)| f.last).map(|(k, _)| *k)
    {
        table.remove(&stalest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(capacity: usize) -> Policy {
        Policy {
            free: 3,
            base: Duration::from_secs(1),
            max: Duration::from_secs(8),
            window: Duration::from_secs(600),
            capacity,
        }
    }

    #[test]
    fn a_key_is_refused_after_its_free_failures_and_longer_at_each_further_one() {
        let throttle = Throttle::new(policy(16));
        let here: IpAddr = "192.0.2.1".parse().unwrap();
        let elsewhere: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(throttle.refused_for(Some("rc"), here), None);
            throttle.failed(Some("rc"), here);
        }
        assert_eq!(
            throttle.refused_for(Some("rc"), here),
            None,
            "three are free"
        );
        throttle.failed(Some("rc"), here);
        let first = throttle.refused_for(Some("rc"), here).expect("refused");
        assert!(first <= Duration::from_secs(1));
        // The name is refused from any address, the address for any name.
        assert!(throttle.refused_for(Some("rc"), elsewhere).is_some());
        assert!(throttle.refused_for(Some("other"), here).is_some());
        assert!(throttle.refused_for(None, elsewhere).is_none());
        throttle.failed(Some("rc"), here);
        throttle.failed(Some("rc"), here);
        let third = throttle.refused_for(Some("rc"), here).unwrap();
        assert!(third > Duration::from_secs(3) && third <= Duration::from_secs(4));
        for _ in 0..40 {
            throttle.failed(Some("rc"), here);
        }
        assert!(throttle.refused_for(Some("rc"), here).unwrap() <= Duration::from_secs(8));
        throttle.succeeded("rc", here);
        assert_eq!(throttle.refused_for(Some("rc"), here), None);
    }

    #[test]
    fn rotating_addresses_and_unknown_names_never_grow_the_tables_past_their_bound() {
        let throttle = Throttle::new(policy(100));
        for i in 0..10_000u32 {
            let address = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            throttle.failed(None, address);
        }
        assert_eq!(throttle.tracked(), (0, 100));
        // IPv6 addresses of one /64 are one key.
        let throttle = Throttle::new(policy(100));
        for i in 0..1000u16 {
            let address = IpAddr::from(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, i));
            throttle.failed(None, address);
        }
        assert_eq!(throttle.tracked(), (0, 1));
        assert!(
            throttle
                .refused_for(None, "2001:db8:0:1::ffff".parse().unwrap())
                .is_some()
        );
    }
}
