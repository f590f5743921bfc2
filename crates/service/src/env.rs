//! What the service layer needs from its platform, injected: a clock, random bytes and the
//! server's secrets. Natively the server implements it with the system clock, the OS random
//! source and secrets kept in its database; a Worker would use `Date.now()`,
//! `crypto.getRandomValues` and its secret bindings.

/// A named server secret. Each name is its own key: a cursor signature never verifies as a
/// URL signature and the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Secret {
    /// Signs download URLs ([`crate::signing::Signer`]).
    Url,
    /// Signs query cursors (core `cursor`).
    Cursor,
}

impl Secret {
    /// Every secret, in a fixed order.
    pub const ALL: [Secret; 2] = [Secret::Url, Secret::Cursor];

    /// The name it is stored under (the native server's `settings` key, a Worker's secret).
    pub fn name(self) -> &'static str {
        match self {
            Secret::Url => "url_secret",
            Secret::Cursor => "cursor_secret",
        }
    }
}

/// A clock.
pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// Seconds since the Unix epoch (rounded down).
    fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }
}

/// A cryptographically secure random source.
pub trait Random {
    /// Fills `buf` with random bytes.
    fn fill_random(&self, buf: &mut [u8]);

    /// `bytes` random bytes as lowercase hex (2 × `bytes` characters).
    fn random_hex(&self, bytes: usize) -> String {
        let mut buf = vec![0u8; bytes];
        self.fill_random(&mut buf);
        hex::encode(buf)
    }
}

/// The server's named secrets.
pub trait Secrets {
    /// The value of a named secret.
    fn secret(&self, which: Secret) -> &[u8];
}

/// The platform: clock, randomness and secrets. Implemented for every type that provides
/// the three.
pub trait Env: Clock + Random + Secrets {}

impl<T: Clock + Random + Secrets + ?Sized> Env for T {}

/// A 32-byte secret from the platform's random source, for a secret not stored yet.
pub fn new_secret(random: &(impl Random + ?Sized)) -> Vec<u8> {
    let mut secret = vec![0u8; 32];
    random.fill_random(&mut secret);
    secret
}

#[cfg(test)]
pub(crate) mod testing {
    //! A deterministic [`Env`] for the crate's tests.
    use super::*;
    use std::cell::Cell;

    /// A fixed clock, a counting "random" source and two distinct secrets.
    pub struct FixedEnv {
        pub now_ms: u64,
        pub counter: Cell<u8>,
    }

    impl Clock for FixedEnv {
        fn now_ms(&self) -> u64 {
            self.now_ms
        }
    }

    impl Random for FixedEnv {
        fn fill_random(&self, buf: &mut [u8]) {
            for b in buf {
                *b = self.counter.get();
                self.counter.set(self.counter.get().wrapping_add(1));
            }
        }
    }

    impl Secrets for FixedEnv {
        fn secret(&self, which: Secret) -> &[u8] {
            match which {
                Secret::Url => b"url-secret",
                Secret::Cursor => b"cursor-secret",
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::FixedEnv;
    use super::*;
    use std::cell::Cell;

    #[test]
    fn secrets_have_distinct_names() {
        assert_eq!(Secret::Url.name(), "url_secret");
        assert_eq!(Secret::Cursor.name(), "cursor_secret");
        assert_ne!(Secret::Url.name(), Secret::Cursor.name());
    }

    #[test]
    fn derived_helpers_use_the_injected_clock_and_source() {
        let env = FixedEnv {
            now_ms: 12_999,
            counter: Cell::new(0xfe),
        };
        assert_eq!(env.now_secs(), 12);
        assert_eq!(env.random_hex(3), "feff00");
        let s = new_secret(&env);
        assert_eq!(s.len(), 32);
        assert_eq!(s[0], 0x01);
        fn takes_env(e: &dyn Env) -> &[u8] {
            e.secret(Secret::Cursor)
        }
        assert_eq!(takes_env(&env), b"cursor-secret");
    }
}
