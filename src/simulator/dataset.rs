//! The generated account: registered users and archived items, derived
//! from the seed alone. Items keep a small recipe; their content is
//! rendered on demand and only its size and digest are cached.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use super::config::SimConfig;
use super::content::{self, ContentChunks};
use super::names::{EXTERNALS, FILES, GROUP_TITLES, MEDIA, MOBILE_PLANS, PEOPLE};
use crate::telemessage::model::{
    AttachmentInfo, CallInfo, Conversation, ConversationKind, Item, ItemType, Participant,
    Platform, RecallInfo, RegisteredUser,
};
use crate::types::ItemId;

/// One attachment as the content carries it; its bytes come from `key`.
#[derive(Debug, Clone)]
pub(crate) struct AttachmentRecipe {
    pub info: AttachmentInfo,
    pub key: u64,
}

/// Everything needed to list an item and render its content.
#[derive(Debug)]
pub(crate) struct Recipe {
    pub id: ItemId,
    pub platform: Platform,
    pub kind: ItemType,
    pub conversation: Conversation,
    pub sent_at: DateTime<Utc>,
    pub archived_at: DateTime<Utc>,
    pub sender: Participant,
    pub participants: Vec<Participant>,
    pub attachments: Vec<AttachmentRecipe>,
    pub call: Option<CallInfo>,
    pub recall: Option<RecallInfo>,
    /// Seed of the chat text and the target length of its UTF-8 bytes.
    pub text_seed: u64,
    pub text_len: usize,
    /// The whole content, for a hand-made item.
    pub raw: Option<Vec<u8>>,
    measured: OnceLock<(u64, String)>,
}

impl Recipe {
    /// Size and SHA-256 of the content, computed once by streaming it.
    pub fn measure(&self) -> &(u64, String) {
        self.measured.get_or_init(|| content::measure(self))
    }

    /// Whether the content was rendered to learn its size and digest.
    #[cfg(test)]
    pub fn is_measured(&self) -> bool {
        self.measured.get().is_some()
    }

    fn to_item(&self) -> Item {
        let (size, sha256) = self.measure().clone();
        self.build_item(size, sha256)
    }

    fn build_item(&self, size: u64, sha256: String) -> Item {
        Item {
            id: self.id.clone(),
            platform: self.platform.clone(),
            kind: self.kind.clone(),
            conversation: self.conversation.clone(),
            sent_at: self.sent_at,
            archived_at: self.archived_at,
            sender: self.sender.clone(),
            participants: self.participants.clone(),
            size,
            sha256,
            attachments: self.attachments.iter().map(|a| a.info.clone()).collect(),
            call: self.call.clone(),
            recall: self.recall.clone(),
        }
    }
}

/// The whole simulated account. Cheap to build (recipes only); content
/// digests are computed the first time an item is listed or asked for.
#[derive(Debug)]
pub struct Dataset {
    users: Vec<RegisteredUser>,
    recipes: Vec<Recipe>,
    by_id: HashMap<String, usize>,
    domain: String,
}

/// The registered users an item can draw on, split by whether they can be
/// delivered to.
struct UserPools {
    with_email: Vec<usize>,
    without_email: Vec<usize>,
}

impl Dataset {
    pub fn generate(config: &SimConfig) -> Dataset {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let domain = "contoso.com".to_string();
        let users = generate_users(&mut rng, config.users.max(2), &domain);
        let pools = UserPools {
            with_email: (0..users.len())
                .filter(|&i| users[i].email.is_some())
                .collect(),
            without_email: (0..users.len())
                .filter(|&i| users[i].email.is_none())
                .collect(),
        };
        let registered: HashSet<String> = users.iter().filter_map(|u| u.mobile.clone()).collect();
        let externals = generate_externals(&mut rng, &registered);
        let n = config.items;
        let flags = Flags {
            large: pick(&mut rng, n, config.large_fraction),
            recalled: pick(&mut rng, n, config.recalled_fraction),
            unmapped: pick(&mut rng, n, config.unmapped_fraction),
            late: pick(&mut rng, n, config.late_fraction),
        };
        let mut recipes: Vec<Recipe> = (0..n)
            .map(|i| {
                let mut item_rng = StdRng::seed_from_u64(mix(config.seed, i as u64));
                let maker = ItemGen {
                    config,
                    users: &users,
                    pools: &pools,
                    externals: &externals,
                };
                maker.item(&mut item_rng, i, &flags)
            })
            .collect();
        recipes.extend(config.hand_made.iter().map(|h| hand_made(h, &users)));
        recipes.sort_by(|a, b| (a.archived_at, &a.id).cmp(&(b.archived_at, &b.id)));
        let by_id = recipes
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.as_str().to_owned(), i))
            .collect();
        Dataset {
            users,
            recipes,
            by_id,
            domain,
        }
    }

    pub fn len(&self) -> usize {
        self.recipes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.recipes.is_empty()
    }

    /// Every item in listing order (`archived_at`, `id`). Hashes every
    /// content not yet hashed, so it costs a pass over all the bytes once.
    pub fn items(&self) -> Vec<Item> {
        self.recipes.iter().map(Recipe::to_item).collect()
    }

    pub fn item(&self, id: &str) -> Option<Item> {
        self.recipe(id).map(Recipe::to_item)
    }

    /// The items a listing of `[since, until)` returns, in order.
    pub fn items_in_window(&self, since: DateTime<Utc>, until: DateTime<Utc>) -> Vec<Item> {
        self.window(since, until)
            .iter()
            .map(Recipe::to_item)
            .collect()
    }

    /// Computes every content digest now, on all cores, so that later
    /// listings (and a benchmark's clock) do not pay for it.
    pub fn warm_digests(&self) {
        measure_all(&self.recipes);
    }

    /// Ids of every item, in listing order, without hashing anything.
    pub fn ids(&self) -> Vec<ItemId> {
        self.recipes.iter().map(|r| r.id.clone()).collect()
    }

    pub fn users(&self) -> &[RegisteredUser] {
        &self.users
    }

    /// The whole content of an item. For large items prefer
    /// [`Dataset::content_reader`].
    pub fn content(&self, id: &str) -> Option<Vec<u8>> {
        let recipe = self.recipe(id)?;
        let mut out = Vec::new();
        for chunk in ContentChunks::new(recipe, 0) {
            out.extend_from_slice(&chunk);
        }
        Some(out)
    }

    /// The content of an item as a reader that renders it chunk by chunk.
    pub fn content_reader(&self, id: &str) -> Option<impl std::io::Read + Send + 'static> {
        let recipe = self.recipe(id)?;
        Some(content::ChunkReader::new(ContentChunks::new(recipe, 0)))
    }

    /// The exact bytes of one attachment, as a reader of the content must
    /// recover them from its base64 MIME part.
    pub fn attachment_bytes(&self, id: &str, index: usize) -> Option<Vec<u8>> {
        let a = self.recipe(id)?.attachments.get(index)?;
        let mut out = vec![0u8; a.info.size as usize];
        content::fill_raw(a.key, 0, &mut out);
        Some(out)
    }

    /// Writes the custom mapping CSV (`mobile_number,mailbox`) of every
    /// registered user who has both a mobile and an e-mail.
    pub fn write_mapping_csv(&self, path: &Path) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(out, "mobile_number,mailbox")?;
        for u in &self.users {
            if let (Some(m), Some(e)) = (&u.mobile, &u.email) {
                writeln!(out, "{m},{e}")?;
            }
        }
        out.flush()
    }

    /// The mailboxes an item belongs in under the mapping rules, given the
    /// mapping CSV from [`Dataset::write_mapping_csv`] (`custom`) and/or
    /// automatic e-mail mapping (`auto_email`). Lowercase addresses.
    pub fn expected_mailboxes(
        &self,
        item: &Item,
        custom: bool,
        auto_email: bool,
    ) -> BTreeSet<String> {
        let by_mobile: HashMap<&str, &str> = self
            .users
            .iter()
            .filter_map(|u| Some((u.mobile.as_deref()?, u.email.as_deref()?)))
            .collect();
        let mut out = BTreeSet::new();
        for p in item.parties() {
            let from_csv = custom
                .then(|| p.mobile.as_deref().and_then(|m| by_mobile.get(m).copied()))
                .flatten();
            let from_email = auto_email.then_some(p.email.as_deref()).flatten();
            if let Some(mailbox) = from_csv.or(from_email) {
                out.insert(mailbox.to_lowercase());
            }
        }
        out
    }

    /// The e-mail domain of registered users.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub(crate) fn recipe(&self, id: &str) -> Option<&Recipe> {
        self.by_id.get(id).map(|&i| &self.recipes[i])
    }

    /// The item without size and digest: for tests that must not pay for
    /// hashing thousands of contents.
    #[cfg(test)]
    pub(crate) fn item_unmeasured(&self, r: &Recipe) -> Item {
        r.build_item(0, String::new())
    }

    pub(crate) fn recipes(&self) -> &[Recipe] {
        &self.recipes
    }

    /// The recipes whose `archived_at` lies in `[since, until)`.
    pub(crate) fn window(&self, since: DateTime<Utc>, until: DateTime<Utc>) -> &[Recipe] {
        &self.recipes[self.window_range(since, until)]
    }

    pub(crate) fn window_range(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> std::ops::Range<usize> {
        let lo = self.recipes.partition_point(|r| r.archived_at < since);
        let hi = self
            .recipes
            .partition_point(|r| r.archived_at < until)
            .max(lo);
        lo..hi
    }
}

/// Measures recipes on up to as many threads as there are cores.
pub(crate) fn measure_all(recipes: &[Recipe]) {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(recipes.len())
        .max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(r) = recipes.get(i) else { break };
                    r.measure();
                }
            });
        }
    });
}

fn hand_made(h: &super::config::HandMade, users: &[RegisteredUser]) -> Recipe {
    let user = users
        .iter()
        .find(|u| u.email.is_some())
        .expect("a registered user with an e-mail");
    let name = h.sender_name.clone().unwrap_or_else(|| user.name.clone());
    let sender = if h.sender_unmapped {
        Participant {
            name,
            mobile: Some("+15550100999".into()),
            email: None,
            wechat_id: Some("wxid_hand_made_external".into()),
        }
    } else {
        Participant {
            name,
            mobile: user.mobile.clone(),
            email: user.email.clone(),
            wechat_id: user.wechat_id.clone(),
        }
    };
    Recipe {
        id: ItemId::parse(&h.id).expect("a hand-made item needs a valid id"),
        platform: Platform::WeChat,
        kind: h.kind.clone(),
        conversation: Conversation {
            id: "cnv_hand_made".into(),
            kind: ConversationKind::Direct,
            title: h.conversation_title.clone(),
        },
        sent_at: h.archived_at,
        archived_at: h.archived_at,
        participants: vec![sender.clone()],
        sender,
        attachments: h
            .attachments
            .iter()
            .map(|info| AttachmentRecipe {
                info: info.clone(),
                key: 0,
            })
            .collect(),
        call: None,
        recall: None,
        text_seed: 0,
        text_len: 0,
        raw: Some(h.content.clone()),
        measured: OnceLock::new(),
    }
}

/// Which item indices get each special property; exact counts, so a test
/// asking for 2 % recalled gets exactly `round(0.02 * n)`.
struct Flags {
    large: HashSet<usize>,
    recalled: HashSet<usize>,
    unmapped: HashSet<usize>,
    late: HashSet<usize>,
}

fn pick(rng: &mut StdRng, n: usize, fraction: f64) -> HashSet<usize> {
    let k = ((n as f64) * fraction.clamp(0.0, 1.0)).round() as usize;
    rand::seq::index::sample(rng, n, k.min(n))
        .into_iter()
        .collect()
}

/// SplitMix64: a stable, fast mixer for per-item and per-block seeds.
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(0x6A09_E667_F3BC_C909);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn mobile(rng: &mut StdRng) -> String {
    let (cc, lead, rest) = *MOBILE_PLANS.choose(rng).expect("plans");
    let digits: String = (0..rest)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect();
    format!("+{cc}{lead}{digits}")
}

fn unique_mobile(rng: &mut StdRng, taken: &mut HashSet<String>) -> String {
    loop {
        let m = mobile(rng);
        if taken.insert(m.clone()) {
            return m;
        }
    }
}

fn generate_users(rng: &mut StdRng, n: usize, domain: &str) -> Vec<RegisteredUser> {
    let mut taken = HashSet::new();
    (0..n)
        .map(|i| {
            let (name, local, wid) = PEOPLE[i % PEOPLE.len()];
            let round = i / PEOPLE.len();
            let suffix = if round == 0 {
                String::new()
            } else {
                (round + 1).to_string()
            };
            // Every tenth user has no e-mail on file, every ninth is suspended.
            let email = (i % 10 != 7).then(|| format!("{local}{suffix}@{domain}"));
            RegisteredUser {
                name: name.to_owned(),
                mobile: Some(unique_mobile(rng, &mut taken)),
                email,
                wechat_id: Some(format!("{wid}{suffix}")),
                status: if i % 9 == 5 { "suspended" } else { "active" }.to_owned(),
            }
        })
        .collect()
}

fn generate_externals(rng: &mut StdRng, registered: &HashSet<String>) -> Vec<Participant> {
    let mut taken = registered.clone();
    (0..24)
        .map(|i| Participant {
            name: EXTERNALS[i % EXTERNALS.len()].to_owned(),
            mobile: (i % 3 != 0).then(|| unique_mobile(rng, &mut taken)),
            email: None,
            wechat_id: Some(format!("wxid_{:08x}", rng.random::<u32>())),
        })
        .collect()
}

/// Shared context of item generation.
struct ItemGen<'a> {
    config: &'a SimConfig,
    users: &'a [RegisteredUser],
    pools: &'a UserPools,
    externals: &'a [Participant],
}

impl ItemGen<'_> {
    fn item(&self, rng: &mut StdRng, index: usize, flags: &Flags) -> Recipe {
        let config = self.config;
        let large = flags.large.contains(&index);
        let kind = if flags.recalled.contains(&index) {
            ItemType::Recalled
        } else if large {
            if rng.random_bool(0.5) {
                ItemType::File
            } else {
                ItemType::Attachment
            }
        } else {
            match rng.random_range(0..100) {
                0..55 => ItemType::Chat,
                55..65 => ItemType::Call,
                65..85 => ItemType::Attachment,
                _ => ItemType::File,
            }
        };
        let platform = if rng.random_bool(0.6) {
            Platform::WeChat
        } else {
            Platform::WeCom
        };
        let archived_at = self.archived_at(rng);
        let sent_at = if flags.late.contains(&index) {
            archived_at - Duration::seconds(rng.random_range(86_400..5 * 86_400))
        } else {
            archived_at - Duration::milliseconds(rng.random_range(0..15_000))
        };
        let parties = self.parties(rng, flags.unmapped.contains(&index));
        let group = parties.len() > 2 || rng.random_bool(0.3);
        let sender = parties[rng.random_range(0..parties.len())].clone();
        let conversation = conversation(rng, &parties, group, &sender);
        let target = if large {
            rng.random_range(config.large_size.0..=config.large_size.1.max(config.large_size.0))
        } else {
            ordinary_size(rng, config.median_size)
        };
        let (attachments, text_len) =
            attachments_and_text(rng, &kind, target, index as u64, config.seed);
        let call = (kind == ItemType::Call).then(|| call_info(rng, sent_at));
        let recall = (kind == ItemType::Recalled).then(|| RecallInfo {
            recalled_at: (sent_at + Duration::seconds(rng.random_range(5..120))).min(archived_at),
            original_item_id: rng.random_bool(0.5).then(|| {
                item_id(config.seed, rng.random_range(0..config.items.max(1)) as u64).to_string()
            }),
        });
        Recipe {
            id: item_id(config.seed, index as u64),
            platform,
            kind,
            conversation,
            sent_at,
            archived_at,
            sender,
            participants: parties,
            attachments,
            call,
            recall,
            text_seed: rng.random(),
            text_len,
            raw: None,
            measured: OnceLock::new(),
        }
    }

    /// Whole seconds mostly (so ties on `archived_at` happen and the id
    /// decides the order), milliseconds sometimes.
    fn archived_at(&self, rng: &mut StdRng) -> DateTime<Utc> {
        let span_ms = (self.config.window_end - self.config.window_start)
            .num_milliseconds()
            .max(1);
        let mut offset = rng.random_range(0..span_ms);
        if rng.random_bool(0.85) {
            offset -= offset % 1000;
        }
        self.config.window_start + Duration::milliseconds(offset)
    }

    fn parties(&self, rng: &mut StdRng, unmapped: bool) -> Vec<Participant> {
        let mut parties = Vec::new();
        if unmapped {
            let n = rng.random_range(1..=3);
            for e in self.externals.choose_multiple(rng, n) {
                parties.push(e.clone());
            }
            if parties.len() < 2 {
                // An external with no mobile and no e-mail at all.
                parties.push(self.externals[0].clone());
            }
            return parties;
        }
        let mean = self.config.mapped_per_item.max(1.0);
        let extra = mean - 1.0;
        let k = 1 + extra.floor() as usize + usize::from(rng.random_bool(extra.fract()));
        let k = k.min(self.pools.with_email.len()).max(1);
        for &u in self.pools.with_email.choose_multiple(rng, k) {
            parties.push(appearance(rng, &self.users[u]));
        }
        if rng.random_bool(0.15)
            && let Some(&u) = self.pools.without_email.choose(rng)
        {
            parties.push(appearance(rng, &self.users[u]));
        }
        let externals = match rng.random_range(0..10) {
            0..4 => 0,
            4..8 => 1,
            _ => rng.random_range(2..5),
        };
        if parties.len() + externals < 2 {
            parties.push(self.externals.choose(rng).expect("externals").clone());
        }
        for e in self.externals.choose_multiple(rng, externals) {
            parties.push(e.clone());
        }
        parties
    }
}

/// How a registered user shows up in one item: TeleMessage does not always
/// hold both the mobile and the e-mail. A user is never shown with neither,
/// so one with an e-mail on file stays deliverable one way or the other.
fn appearance(rng: &mut StdRng, user: &RegisteredUser) -> Participant {
    let roll = rng.random_range(0..20);
    Participant {
        name: user.name.clone(),
        mobile: if roll == 0 && user.email.is_some() {
            None
        } else {
            user.mobile.clone()
        },
        email: if roll == 1 { None } else { user.email.clone() },
        wechat_id: user.wechat_id.clone(),
    }
}

fn conversation(
    rng: &mut StdRng,
    parties: &[Participant],
    group: bool,
    sender: &Participant,
) -> Conversation {
    let mut ids: Vec<&str> = parties
        .iter()
        .filter_map(|p| p.wechat_id.as_deref())
        .collect();
    ids.sort_unstable();
    let key = ids.iter().fold(if group { 7 } else { 3 }, |h, id| {
        id.bytes().fold(h, |h, b| mix(h, u64::from(b)))
    });
    let title = if group {
        GROUP_TITLES.choose(rng).expect("titles").to_string()
    } else {
        parties
            .iter()
            .find(|p| *p != sender)
            .map(|p| p.name.clone())
            .unwrap_or_default()
    };
    Conversation {
        id: format!("cnv_{:012x}", key >> 16),
        kind: if group {
            ConversationKind::Group
        } else {
            ConversationKind::Direct
        },
        title,
    }
}

/// Log-normal around the median, kept well under 10 MB.
fn ordinary_size(rng: &mut StdRng, median: u64) -> u64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    ((median as f64) * (0.7 * z).exp()).clamp(1_500.0, 3_000_000.0) as u64
}

/// Splits a target content size between chat text and attachments.
fn attachments_and_text(
    rng: &mut StdRng,
    kind: &ItemType,
    target: u64,
    index: u64,
    seed: u64,
) -> (Vec<AttachmentRecipe>, usize) {
    const OVERHEAD: u64 = 1_600;
    let budget = target.saturating_sub(OVERHEAD) * 3 / 4;
    let with_attachment = match kind {
        ItemType::Attachment | ItemType::File => true,
        ItemType::Call => rng.random_bool(0.3),
        _ => rng.random_bool(0.15),
    };
    if !with_attachment {
        return (Vec::new(), budget.max(40) as usize);
    }
    let pool = if *kind == ItemType::File {
        FILES
    } else {
        MEDIA
    };
    let count = if budget > 5_000_000 || rng.random_bool(0.8) {
        1
    } else {
        2
    };
    let text = (budget / 20).clamp(40, 2_000);
    let per = budget.saturating_sub(text) / count;
    let attachments = (0..count)
        .map(|j| {
            let (name, content_type) = *pool.choose(rng).expect("pool");
            // A few empty attachments: a 0-byte part must survive too.
            let size = if budget < 5_000_000 && rng.random_range(0..200) == 0 {
                0
            } else {
                per.max(1)
            };
            AttachmentRecipe {
                info: AttachmentInfo {
                    name: name.to_owned(),
                    content_type: content_type.to_owned(),
                    size,
                },
                key: mix(mix(seed, index), 0xA77 + j),
            }
        })
        .collect();
    (attachments, text as usize)
}

fn call_info(rng: &mut StdRng, sent_at: DateTime<Utc>) -> CallInfo {
    let result = ["answered", "answered", "missed", "declined"]
        .choose(rng)
        .expect("results");
    CallInfo {
        media: if rng.random_bool(0.7) {
            "voice"
        } else {
            "video"
        }
        .to_owned(),
        started_at: sent_at,
        duration_seconds: if *result == "answered" {
            rng.random_range(5..3_600)
        } else {
            0
        },
        result: (*result).to_owned(),
    }
}

/// `itm_` and ten Crockford base32 digits of a bijective scramble of the
/// index: unique, stable, and not in archive order.
pub(crate) fn item_id(seed: u64, index: u64) -> ItemId {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    const MASK: u64 = (1 << 50) - 1;
    let scrambled = (index.wrapping_mul(0x5DEE_CE66_D1B5) ^ (mix(seed, 0) & MASK)) & MASK;
    let digits: String = (0..10)
        .rev()
        .map(|k| ALPHABET[((scrambled >> (5 * k)) & 31) as usize] as char)
        .collect();
    ItemId::parse(&format!("itm_{digits}")).expect("generated ids are valid")
}
