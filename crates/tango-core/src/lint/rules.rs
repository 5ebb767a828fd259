//! The rule catalogue: every lint rule's stable ID, name, default severity, and the
//! general reason and fix that `docs/checklist.md` and SARIF's rule metadata show.
//!
//! IDs are never reused or renumbered: configurations name them in `[[allow]]`.

use crate::diag::Severity;

/// One rule of the configuration checklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Stable ID, e.g. `TNG001`.
    pub id: &'static str,
    /// Short kebab-case name, e.g. `weight-outlier`.
    pub name: &'static str,
    /// Severity of a typical finding; a few rules report a milder one in milder cases.
    pub severity: Severity,
    /// One line: what the rule looks for.
    pub summary: &'static str,
    /// Why it matters.
    pub why: &'static str,
    /// How to fix it, in general; findings often carry a more specific hint.
    pub hint: &'static str,
}

/// The ID under which validation errors (which have no rule) are exported to JSON and SARIF.
pub const INVALID_ID: &str = "TNG000";

/// Catalogue entry for validation errors, so SARIF can describe `TNG000` like any rule.
pub const INVALID: Rule = Rule {
    id: INVALID_ID,
    name: "config-invalid",
    severity: Severity::Error,
    summary: "The configuration does not parse or fails validation.",
    why: "tango refuses to start with, or reload to, a configuration it cannot understand.",
    hint: "Fix the value at the reported location; the message names the expected form.",
};

macro_rules! rule {
    ($c:ident, $id:literal, $name:literal, $sev:ident, $summary:literal, $why:literal, $hint:literal) => {
        #[doc = concat!("The `", $name, "` rule (`", $id, "`).")]
        pub const $c: Rule = Rule {
            id: $id,
            name: $name,
            severity: Severity::$sev,
            summary: $summary,
            why: $why,
            hint: $hint,
        };
    };
}

rule!(WEIGHT_OUTLIER, "TNG001", "weight-outlier", Warning,
    "One backend's weight is far above its peers' (5x their median or more), or one backend holds more than half of a pool's weight.",
    "Weights decide traffic share. A typo such as 10 for 1 silently sends most of a pool's requests to one server, which then runs hot while the others idle; latency and errors rise for the users it serves.",
    "Check the weight. If the backend really is that much bigger, allow the rule with the reason (e.g. its size).");
rule!(DUPLICATE_BACKEND, "TNG002", "duplicate-backend", Warning,
    "The same backend address appears twice in one pool.",
    "Every entry gets its own share, so a duplicated address receives double (or more) of what its weight says.",
    "Remove the duplicate entry; raise the weight of the remaining one if more traffic is meant.");
rule!(SINGLE_BACKEND, "TNG003", "single-backend", Warning,
    "A pool has exactly one backend.",
    "There is nothing to balance and nothing to fail over to: when that backend fails, every request to the pool fails.",
    "Add a second backend, or allow the rule with the reason (e.g. a singleton service by design).");
rule!(
    ZERO_TOTAL_WEIGHT,
    "TNG004",
    "zero-total-weight",
    Error,
    "Every backend of a pool has weight 0.",
    "A weight of 0 drains a backend; with all of them drained the pool cannot serve any request.",
    "Give at least one backend a weight of 1 or more."
);
rule!(NO_HEALTH_CHECK, "TNG005", "no-health-check", Warning,
    "A pool has no active health checks.",
    "Without probes a dead or hung backend keeps its share until requests to it fail; passive ejection alone only notices after users were hit.",
    "Add a [pool.health] table (an HTTP check of a cheap endpoint, e.g. /healthz).");
rule!(SLOW_HEALTH_CHECK, "TNG006", "slow-health-check", Warning,
    "Health checks take more than 30 s to mark a backend down (interval x fall).",
    "Until a failing backend is marked down it keeps receiving its share of traffic, and those requests fail or time out.",
    "Shorten interval or lower fall so that interval x fall is 30 s or less.");
rule!(HASH_KEY_MAY_BE_MISSING, "TNG007", "hash-key-may-be-missing", Warning,
    "A hash key that requests can lack (header, cookie, query parameter) has no on_missing_key.",
    "Requests without the key are not hashed: by default each goes to a random backend, so whatever the key was for (a session, a warm cache) is lost for them, and the file does not say whether that was meant or the key is mandatory.",
    "Say what keyless requests should get: on_missing_key = \"random\" or \"round_robin\" to spread them on purpose, or \"reject\" (400) when the key is mandatory.");
rule!(CLIENT_ADDRESS_WITHOUT_PROXIES, "TNG008", "client-address-without-trusted-proxies", Info,
    "Hashing on the client address while no listener has trusted_proxies.",
    "Behind a proxy, CDN or cloud load balancer every request arrives from a handful of proxy addresses, so a few backends get all the traffic. tango cannot tell from the file whether it runs behind one.",
    "If a proxy sits in front of tango, list its addresses in the listener's trusted_proxies so the forwarded client address is used; otherwise allow the rule saying clients connect directly.");
rule!(LOW_CARDINALITY_HASH_KEY, "TNG009", "low-cardinality-hash-key", Warning,
    "The hash key takes few distinct values (host, user agent, accept headers, method).",
    "Consistent hashing spreads keys, not requests: with a few distinct values most traffic maps to a few backends however many there are.",
    "Hash on something with many values per backend: a user or session ID, a cookie, the path.");
rule!(TOO_FEW_RING_POINTS, "TNG010", "too-few-ring-points", Warning,
    "ring_points is too small for the ring to split key space evenly (expected max/mean share above 1.10).",
    "Each backend owns the arcs before its points; with few points per backend the arcs vary a lot and some backend owns noticeably more key space than its weight says.",
    "Raise ring_points to the value in the finding's hint.");
rule!(UNBOUNDED_HASH_LOAD, "TNG011", "unbounded-hash-load", Warning,
    "A hashing pool has no max_load_factor.",
    "Hashing sends every request for a key to one backend; a hot key (a big customer, a crawler, a popular item) can overload it while the rest idle.",
    "Set max_load_factor (1.25 is a common choice) so no backend takes more than that multiple of its share of the load.");
rule!(LEAST_REQUEST_LONG_LIVED, "TNG012", "least-request-long-lived", Info,
    "least_request or peak_ewma behind listeners that keep connections or requests open for minutes.",
    "These policies balance in-flight requests; long-lived streams (websockets, long polls, HTTP/2) make in-flight counts reflect old decisions, and connection-level reuse hides per-request balance.",
    "Prefer round_robin for long-lived connections, or shorten the listener's idle_timeout / request_timeout.");
rule!(NO_SLOW_START, "TNG013", "no-slow-start", Info,
    "A pool whose membership changes (health checks, load-aware policies) has no slow_start.",
    "A new or recovered backend starts with cold caches and, under least_request or peak_ewma, with zero in-flight requests, so it receives a burst right away.",
    "Set slow_start (e.g. \"30s\") to ramp its weight up.");
rule!(NO_CONNECTION_CAP, "TNG014", "no-connection-cap", Info,
    "No backend in a pool has max_connections or max_in_flight.",
    "Without a cap, a slow backend accumulates connections and requests without bound, and an imbalance turns into an overload instead of a fast refusal.",
    "Set max_in_flight (or max_connections) on each backend to what it can serve.");
rule!(RETRIES_EXCEED_TIMEOUT, "TNG015", "retries-exceed-timeout", Warning,
    "max_attempts x try_timeout is longer than the pool's timeout.",
    "The pool timeout cuts the request before the later attempts get their full time, so retries that look configured do not happen when they are needed.",
    "Lower try_timeout or max_attempts, or raise timeout to at least max_attempts x try_timeout.");
rule!(POOL_TIMEOUT_EXCEEDS_REQUEST_TIMEOUT, "TNG016", "pool-timeout-exceeds-request-timeout", Warning,
    "A pool's timeout is longer than a listener's request_timeout.",
    "The listener ends the request first, so the pool's timeout and retries never apply as written and clients get the listener's error instead.",
    "Make the pool's timeout shorter than every listener's request_timeout.");
rule!(EJECTION_EMPTIES_SMALL_POOL, "TNG017", "ejection-empties-small-pool", Warning,
    "Outlier ejection may remove half or more of a pool of two or three backends.",
    "In a small pool one ejection moves all its traffic onto the rest; a shared cause (a bad deploy, a slow dependency) can then overload the survivors in turn.",
    "Lower max_ejected_percent so at most one backend of three (none of two) is ejected, or add backends.");
rule!(SHADOWED_ROUTE, "TNG018", "shadowed-route", Warning,
    "A route can never match because an earlier route matches everything it does.",
    "Routes are tried in order; the later route and the traffic split it was meant to give are silently dead.",
    "Move the more specific route before the broader one, or remove it.");
rule!(UNROUTED_POOL, "TNG019", "unrouted-pool", Warning,
    "No route sends traffic to a pool.",
    "The pool gets no traffic; usually a route names the wrong pool, and the traffic meant for this one goes elsewhere.",
    "Add a [[route]] to the pool, fix the route that should name it, or remove the pool.");
rule!(SPLIT_DEVIATES, "TNG020", "split-deviates", Warning,
    "The exact key-space split of the built hash ring or table deviates from the weights by more than 10%.",
    "For hashing pools the share each backend receives is the key space it owns, not its weight; a deviation is a standing imbalance.",
    "Raise ring_points (ring_hash), or check the weights.");
rule!(UNKNOWN_ALLOW, "TNG021", "unknown-allow", Warning,
    "An [[allow]] names a rule that does not exist.",
    "A misspelt ID allows nothing, and the finding it was meant for stays, or a later rule with that ID is silenced by accident.",
    "Use a rule ID from docs/checklist.md (TNG001...).");
rule!(
    UNUSED_ALLOW,
    "TNG022",
    "unused-allow",
    Info,
    "An [[allow]] matches no finding.",
    "A stale allowance hides nothing today but will silence the rule if the hazard comes back.",
    "Remove the [[allow]] entry."
);

rule!(CERTIFICATE_EXPIRES_SOON, "TNG023", "certificate-expires-soon", Warning,
    "A listener's certificate expires within 14 days.",
    "Once it expires every client refuses the handshake: the listener is down for everyone, and nothing in tango's traffic shows it coming.",
    "Renew the certificate and reload; tango re-reads certificates on every reload.");
rule!(UPSTREAM_TLS_UNVERIFIED, "TNG024", "upstream-tls-unverified", Warning,
    "A pool's TLS to its backends does not verify their certificates (verify = false).",
    "Without verification anyone on the path to the backends can answer in their place: the traffic is encrypted, but to whoever intercepts it.",
    "Give the backends' certificate authority as ca (and server_name if the names differ from the addresses) instead of turning verification off.");
rule!(CERTIFICATE_EXPIRED, "TNG025", "certificate-expired", Warning,
    "A listener's certificate has expired.",
    "tango serves it, so the listener's other certificates and the reloads keep working, but every client that verifies certificates refuses the handshake for the names it answers.",
    "Renew the certificate (a new certificate and key in its files, or cert and key pointing to new ones) and reload.");
rule!(CERTIFICATE_NOT_YET_VALID, "TNG026", "certificate-not-yet-valid", Warning,
    "A listener's certificate is not valid yet (its notBefore is still ahead).",
    "tango serves it, but every client that verifies certificates refuses the handshake for the names it answers until then; often this machine's clock is wrong.",
    "Check this machine's clock, or serve a certificate whose notBefore has passed, and reload.");

/// Every rule, in ID order.
pub const RULES: &[Rule] = &[
    WEIGHT_OUTLIER,
    DUPLICATE_BACKEND,
    SINGLE_BACKEND,
    ZERO_TOTAL_WEIGHT,
    NO_HEALTH_CHECK,
    SLOW_HEALTH_CHECK,
    HASH_KEY_MAY_BE_MISSING,
    CLIENT_ADDRESS_WITHOUT_PROXIES,
    LOW_CARDINALITY_HASH_KEY,
    TOO_FEW_RING_POINTS,
    UNBOUNDED_HASH_LOAD,
    LEAST_REQUEST_LONG_LIVED,
    NO_SLOW_START,
    NO_CONNECTION_CAP,
    RETRIES_EXCEED_TIMEOUT,
    POOL_TIMEOUT_EXCEEDS_REQUEST_TIMEOUT,
    EJECTION_EMPTIES_SMALL_POOL,
    SHADOWED_ROUTE,
    UNROUTED_POOL,
    SPLIT_DEVIATES,
    UNKNOWN_ALLOW,
    UNUSED_ALLOW,
    CERTIFICATE_EXPIRES_SOON,
    UPSTREAM_TLS_UNVERIFIED,
    CERTIFICATE_EXPIRED,
    CERTIFICATE_NOT_YET_VALID,
];

/// The rule with this ID, if any (validation's `TNG000` included).
pub fn rule(id: &str) -> Option<&'static Rule> {
    if id == INVALID_ID {
        return Some(&INVALID);
    }
    RULES.iter().find(|r| r.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_in_order() {
        for (i, r) in RULES.iter().enumerate() {
            assert_eq!(r.id, format!("TNG{:03}", i + 1), "{}", r.name);
        }
        assert_eq!(rule("TNG001").map(|r| r.name), Some("weight-outlier"));
        assert_eq!(rule("TNG000").map(|r| r.name), Some("config-invalid"));
        assert!(rule("TNG999").is_none());
    }
}
