//! The Redis balancer's schema and decisions (B§5.3), free of IO: key names
//! (with `PROXY_REDIS_KEY_PREFIX`), the JSON values shared with SRS Go
//! proxies, the Lua scripts that make registration and picking atomic, and
//! the reading of what those scripts answer.
//!
//! Keys and values of B§5.3, kept as SRS Go writes them:
//! `srs-proxy-server:<id>` (origin JSON, TTL = PROXY_ORIGIN_SERVER_TTL),
//! `srs-proxy-all-servers` (JSON array of full server keys, no TTL),
//! `srs-proxy-url:<stream>` (the full server key, no TTL),
//! `srs-proxy-hls:<stream>` and `srs-proxy-spbhid:<id>` (HLS JSON, 120 s),
//! `srs-proxy-rtc:<stream>` and `srs-proxy-ufrag:<ufrag>` (RTC JSON, 120 s).
//! Ours only (an SRS Go proxy ignores them): `srs-proxy-down:<id>`, an
//! origin's hold-down after a refused connect, and
//! `srs-proxy-hls-player:<hash>`, a player's HLS session when its playlist
//! URL carries none.

use serde::{Deserialize, Serialize};
use srs_protocols::stream_url::StreamUrl;

use crate::origin::{Origin, OriginId};
use crate::{LbError, PickOutcome};

const SERVER: &str = "srs-proxy-server:";

/// Key names under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// `"<prefix>:"`, or empty.
    prefix: String,
}

impl Keys {
    /// `prefix` as PROXY_REDIS_KEY_PREFIX gives it; empty means none.
    pub fn new(prefix: &str) -> Self {
        Keys { prefix: if prefix.is_empty() { String::new() } else { format!("{prefix}:") } }
    }

    fn key(&self, kind: &str, rest: &str) -> String {
        format!("{}{kind}{rest}", self.prefix)
    }

    pub fn server(&self, id: &OriginId) -> String {
        self.key(SERVER, id.as_str())
    }

    pub fn all_servers(&self) -> String {
        self.key("srs-proxy-all-servers", "")
    }

    pub fn url(&self, stream: &StreamUrl) -> String {
        self.key("srs-proxy-url:", stream.as_str())
    }

    pub fn hls(&self, stream: &StreamUrl) -> String {
        self.key("srs-proxy-hls:", stream.as_str())
    }

    pub fn spbhid(&self, id: &str) -> String {
        self.key("srs-proxy-spbhid:", id)
    }

    pub fn hls_player(&self, player: u64) -> String {
        self.key("srs-proxy-hls-player:", &format!("{player:016x}"))
    }

    pub fn rtc(&self, stream: &StreamUrl) -> String {
        self.key("srs-proxy-rtc:", stream.as_str())
    }

    pub fn ufrag(&self, ufrag: &str) -> String {
        self.key("srs-proxy-ufrag:", ufrag)
    }

    pub fn down(&self, id: &OriginId) -> String {
        self.key("srs-proxy-down:", id.as_str())
    }

    /// The SCAN pattern of every stream pin under this prefix.
    pub fn url_pattern(&self) -> String {
        // A prefix with glob characters would match more; escape them.
        let mut p = String::new();
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                p.push('\\');
            }
            p.push(c);
        }
        p.push_str("srs-proxy-url:*");
        p
    }

    /// The stream of a pin key, if it is one under this prefix.
    pub fn stream_of_url_key<'a>(&self, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(&self.prefix)?.strip_prefix("srs-proxy-url:")
    }

    /// The origin id of a full server key (`"<prefix>:srs-proxy-server:<id>"`).
    pub fn id_of_server_key(&self, key: &str) -> Option<OriginId> {
        let id = key.strip_prefix(&self.prefix)?.strip_prefix(SERVER)?;
        (!id.is_empty()).then(|| OriginId::new(id.to_string()))
    }
}

/// The HLSPlayStream JSON of B§5.3. `origin` is ours (an SRS Go proxy
/// ignores it and re-picks by `stream_url`); it sends a segment straight to
/// the origin that served the playlist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HlsRecord {
    pub spbhid: String,
    pub stream_url: String,
    #[serde(default)]
    pub full_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// The RTCConnection JSON of B§5.3. srs-proxy adds the origin and its media
/// address (the answer's candidate port may differ from the registered
/// `rtc` endpoint); SRS Go's decoder ignores fields it does not know, and a
/// record SRS Go wrote (without them) is found by the stream's pin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtcRecord {
    pub stream_url: String,
    pub ufrag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<String>,
    /// `publish` or `play`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// Registration, atomically: refresh the server key (unless the origin is
/// held down after a refused connect), prune expired keys from the
/// all-servers list and add this one. SRS Go does this as a
/// read-modify-write from the client and can lose entries to a concurrent
/// heartbeat; inside a script nothing runs between the read and the write.
/// KEYS: server, all-servers, down. ARGV: origin JSON, TTL (s).
/// Answers 1 for a new key, 0 for a refresh, -1 when held down.
pub const UPDATE_SCRIPT: &str = r#"
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
local existed = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
local list = {}
local raw = redis.call('GET', KEYS[2])
if raw then
  local ok, decoded = pcall(cjson.decode, raw)
  if ok and type(decoded) == 'table' then list = decoded end
end
local kept, seen = {}, false
for _, k in ipairs(list) do
  if type(k) == 'string' then
    if k == KEYS[1] then seen = true end
    if redis.call('EXISTS', k) == 1 then table.insert(kept, k) end
  end
end
if not seen then table.insert(kept, KEYS[1]) end
redis.call('SET', KEYS[2], cjson.encode(kept))
return existed == 1 and 0 or 1
"#;

/// The pick, atomically: the pin if its server key lives, else a draw among
/// the listed servers whose keys live, stored as the pin. Two proxies
/// picking one new stream at once run one after the other, so the second
/// finds the first's pin. KEYS: url, all-servers. ARGV: a random integer.
/// Answers {0, key, json} pinned, {1, key, json} new pin, {2, key, json,
/// from} re-pinned, {3} no live server.
pub const PICK_SCRIPT: &str = r#"
local pinned = redis.call('GET', KEYS[1])
if pinned then
  local v = redis.call('GET', pinned)
  if v then return {0, pinned, v} end
end
local raw = redis.call('GET', KEYS[2])
local list = {}
if raw then
  local ok, decoded = pcall(cjson.decode, raw)
  if ok and type(decoded) == 'table' then list = decoded end
end
local live, values = {}, {}
for _, k in ipairs(list) do
  if type(k) == 'string' then
    local v = redis.call('GET', k)
    if v then table.insert(live, k); table.insert(values, v) end
  end
end
if #live == 0 then return {3} end
local i = (tonumber(ARGV[1]) % #live) + 1
redis.call('SET', KEYS[1], live[i])
if pinned then return {2, live[i], values[i], pinned} end
return {1, live[i], values[i]}
"#;

/// Every listed server that lives, with its remaining TTL (ms), for the
/// per-core origin cache. KEYS: all-servers. Answers {key, json, pttl}...
pub const LIST_SCRIPT: &str = r#"
local raw = redis.call('GET', KEYS[1])
local out = {}
if not raw then return out end
local ok, list = pcall(cjson.decode, raw)
if not ok or type(list) ~= 'table' then return out end
for _, k in ipairs(list) do
  if type(k) == 'string' then
    local v = redis.call('GET', k)
    if v then
      table.insert(out, k); table.insert(out, v); table.insert(out, redis.call('PTTL', k))
    end
  end
end
return out
"#;

/// Writing back what live sessions depend on after Redis came back empty
/// (or a replica missing writes took over): origins first, with the TTL
/// they had left, then pins, each only where nothing newer is there
/// (NX), and every origin key added to the all-servers list.
/// An origin held down (its down key exists) is not written back.
/// KEYS: all-servers. ARGV: n origins, then n (key, json, ttl ms, down
/// key), then (url key, server key) pairs.
pub const RESTORE_SCRIPT: &str = r#"
local n = tonumber(ARGV[1])
local raw = redis.call('GET', KEYS[1])
local list = {}
if raw then
  local ok, decoded = pcall(cjson.decode, raw)
  if ok and type(decoded) == 'table' then list = decoded end
end
local listed = {}
for _, k in ipairs(list) do listed[k] = true end
local i = 2
for _ = 1, n do
  local k, v, ttl, down = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  if ttl > 0 and redis.call('EXISTS', down) == 0 then
    redis.call('SET', k, v, 'PX', ttl, 'NX')
    if not listed[k] then table.insert(list, k); listed[k] = true end
  end
  i = i + 4
end
if n > 0 and #list > 0 then redis.call('SET', KEYS[1], cjson.encode(list)) end
local pins = 0
while ARGV[i] do
  if redis.call('SET', ARGV[i], ARGV[i + 1], 'NX') then pins = pins + 1 end
  i = i + 2
end
return pins
"#;

/// What [`PICK_SCRIPT`] answered, as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickReply {
    pub code: i64,
    pub server_key: Option<String>,
    pub json: Option<Vec<u8>>,
    pub from: Option<String>,
}

/// The pick's result from the script's answer: the origin, and whether it
/// was pinned, newly pinned or re-pinned.
pub fn decode_pick(keys: &Keys, stream: &StreamUrl, r: PickReply) -> Result<(Origin, PickOutcome), LbError> {
    let bad = |what: &str| LbError::Backend { reason: format!("redis pick for {stream}: {what}") };
    if r.code == 3 {
        return Err(LbError::NoOrigin { stream: stream.to_string() });
    }
    let json = r.json.ok_or_else(|| bad("no server value"))?;
    let origin: Origin =
        serde_json::from_slice(&json).map_err(|e| bad(&format!("server value is not origin JSON: {e}")))?;
    let outcome = match r.code {
        0 => PickOutcome::Pinned,
        1 => PickOutcome::NewPin,
        2 => {
            let from = r.from.ok_or_else(|| bad("re-pin without the old pin"))?;
            PickOutcome::Repinned { from: keys.id_of_server_key(&from).unwrap_or_else(|| OriginId::new(from)) }
        }
        c => return Err(bad(&format!("unknown answer {c}"))),
    };
    Ok((origin, outcome))
}

/// Which HLS session a playlist request continues: the id the player sent
/// if Redis still holds it for this stream, else the one its player hash
/// had (same stream), else `fresh`.
pub fn choose_spbhid(
    stream: &StreamUrl,
    given: Option<(&str, Option<&[u8]>)>,
    by_player: Option<(&str, Option<&[u8]>)>,
    fresh: String,
) -> String {
    let holds = |rec: Option<&[u8]>| {
        rec.and_then(|b| serde_json::from_slice::<HlsRecord>(b).ok()).is_some_and(|r| r.stream_url == stream.as_str())
    };
    for (id, rec) in [given, by_player].into_iter().flatten() {
        if holds(rec) {
            return id.to_string();
        }
    }
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> StreamUrl {
        StreamUrl::new_unchecked("__defaultVhost__/live/s1".to_string())
    }

    #[test]
    fn keys_without_and_with_prefix() {
        let id = OriginId::new("vid-a-svc-12".into());
        let k = Keys::new("");
        assert_eq!(k.server(&id), "srs-proxy-server:vid-a-svc-12");
        assert_eq!(k.all_servers(), "srs-proxy-all-servers");
        assert_eq!(k.url(&stream()), "srs-proxy-url:__defaultVhost__/live/s1");
        assert_eq!(k.hls(&stream()), "srs-proxy-hls:__defaultVhost__/live/s1");
        assert_eq!(k.spbhid("abc"), "srs-proxy-spbhid:abc");
        assert_eq!(k.rtc(&stream()), "srs-proxy-rtc:__defaultVhost__/live/s1");
        assert_eq!(k.ufrag("u1"), "srs-proxy-ufrag:u1");
        let k = Keys::new("p1");
        assert_eq!(k.server(&id), "p1:srs-proxy-server:vid-a-svc-12");
        assert_eq!(k.all_servers(), "p1:srs-proxy-all-servers");
        assert_eq!(k.url(&stream()), "p1:srs-proxy-url:__defaultVhost__/live/s1");
        assert_eq!(k.id_of_server_key("p1:srs-proxy-server:vid-a-svc-12"), Some(id.clone()));
        assert_eq!(k.id_of_server_key("srs-proxy-server:vid-a-svc-12"), None, "another prefix");
        assert_eq!(k.id_of_server_key("p1:srs-proxy-server:"), None);
        assert_eq!(k.stream_of_url_key("p1:srs-proxy-url:v/a/s"), Some("v/a/s"));
        assert_eq!(Keys::new("a*b").url_pattern(), "a\\*b:srs-proxy-url:*");
    }

    #[test]
    fn hls_and_rtc_json_as_srs_go_writes_them() {
        let r = HlsRecord {
            spbhid: "x1".into(),
            stream_url: "__defaultVhost__/live/s1".into(),
            full_url: "http://h/live/s1.m3u8".into(),
            origin: None,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"spbhid":"x1","stream_url":"__defaultVhost__/live/s1","full_url":"http://h/live/s1.m3u8"}"#
        );
        let back: HlsRecord = serde_json::from_str(r#"{"spbhid":"x1","stream_url":"v/a/s","full_url":""}"#).unwrap();
        assert_eq!(back.origin, None);
        let rtc = RtcRecord { stream_url: "v/a/s".into(), ufrag: "u1".into(), origin: None, media: None, role: None };
        assert_eq!(serde_json::to_string(&rtc).unwrap(), r#"{"stream_url":"v/a/s","ufrag":"u1"}"#);
        // srs-proxy's own fields ride along; SRS Go's record (without them) reads back.
        let ours = RtcRecord { origin: Some("o-1".into()), media: Some("10.0.0.1:8000".into()), ..rtc.clone() };
        let json = serde_json::to_string(&ours).unwrap();
        assert_eq!(json, r#"{"stream_url":"v/a/s","ufrag":"u1","origin":"o-1","media":"10.0.0.1:8000"}"#);
        assert_eq!(serde_json::from_str::<RtcRecord>(r#"{"stream_url":"v/a/s","ufrag":"u1"}"#).unwrap(), rtc);
    }

    fn origin_json() -> Vec<u8> {
        br#"{"ip":"127.0.0.1","server_id":"vid-a","service_id":"s","pid":"9","rtmp":["1935"]}"#.to_vec()
    }

    #[test]
    fn pick_answers() {
        let k = Keys::new("");
        let reply = |code, from: Option<&str>| PickReply {
            code,
            server_key: Some("srs-proxy-server:vid-a-s-9".into()),
            json: Some(origin_json()),
            from: from.map(str::to_string),
        };
        let (o, out) = decode_pick(&k, &stream(), reply(0, None)).unwrap();
        assert_eq!((o.id().as_str(), out), ("vid-a-s-9", PickOutcome::Pinned));
        assert_eq!(decode_pick(&k, &stream(), reply(1, None)).unwrap().1, PickOutcome::NewPin);
        assert_eq!(
            decode_pick(&k, &stream(), reply(2, Some("srs-proxy-server:old-1-2"))).unwrap().1,
            PickOutcome::Repinned { from: OriginId::new("old-1-2".into()) }
        );
        let none = PickReply { code: 3, server_key: None, json: None, from: None };
        assert_eq!(
            decode_pick(&k, &stream(), none),
            Err(LbError::NoOrigin { stream: "__defaultVhost__/live/s1".into() })
        );
    }

    #[test]
    fn pick_answers_that_are_garbage() {
        let k = Keys::new("");
        let cases: &[(&str, PickReply)] = &[
            ("no value", PickReply { code: 0, server_key: None, json: None, from: None }),
            ("not json", PickReply { code: 0, server_key: None, json: Some(b"{".to_vec()), from: None }),
            ("re-pin without from", PickReply { code: 2, server_key: None, json: Some(origin_json()), from: None }),
            ("unknown code", PickReply { code: 7, server_key: None, json: Some(origin_json()), from: None }),
        ];
        for (what, r) in cases {
            assert!(matches!(decode_pick(&k, &stream(), r.clone()), Err(LbError::Backend { .. })), "{what}");
        }
    }

    #[test]
    fn spbhid_choice() {
        let s = stream();
        let rec = |stream: &str| {
            serde_json::to_vec(&HlsRecord {
                spbhid: "id".into(),
                stream_url: stream.into(),
                full_url: String::new(),
                origin: None,
            })
            .unwrap()
        };
        let mine = rec(s.as_str());
        let other = rec("v/a/other");
        let fresh = || "new".to_string();
        assert_eq!(choose_spbhid(&s, Some(("g", Some(&mine))), None, fresh()), "g");
        assert_eq!(choose_spbhid(&s, Some(("g", None)), Some(("p", Some(&mine))), fresh()), "p", "given expired");
        assert_eq!(choose_spbhid(&s, Some(("g", Some(&other))), None, fresh()), "new", "another stream's id");
        assert_eq!(choose_spbhid(&s, None, Some(("p", Some(b"junk"))), fresh()), "new");
        assert_eq!(choose_spbhid(&s, None, None, fresh()), "new");
    }
}
