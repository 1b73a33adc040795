//! Bringing stored address keys up to [`key_of`]: the plan the SQL stores'
//! migration applies.

use std::collections::{BTreeMap, HashMap};

use super::key_of;

/// One stored account, as [`plan_rekey`] needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredAddress {
    /// The account's id.
    pub(crate) id: String,
    /// The stored address.
    pub(crate) email: String,
    /// The key stored with it now.
    pub(crate) old_key: String,
    /// Creation time; the oldest of colliding accounts keeps the key.
    pub(crate) created_at: i64,
}

/// One change of [`plan_rekey`]'s plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Rekey {
    /// Set the account's key to `key`.
    Update {
        /// The account's id.
        id: String,
        /// Its new key.
        key: String,
    },
    /// Disable the account and park it on `key`, because an older account
    /// has the same new key.
    Disable {
        /// The account's id.
        id: String,
        /// A key of its own that no address can have: `Disabled:{id}`.
        key: String,
        /// The id of the account that keeps the new key.
        kept_by: String,
    },
}

/// The changes that bring every stored account's key to [`key_of`] its
/// address, given every stored account (their old keys unique).
///
/// Where several accounts meet on one new key (a Unicode and a punycode
/// twin), the oldest (by `created_at`, then `id`) keeps it and the others are
/// disabled and parked on `Disabled:{id}` — upper-case, so neither
/// [`key_of`] nor the old trim-and-lower-case key can ever produce it.
/// Accounts whose key stays, and parked accounts that stay parked, produce
/// nothing; planning again after applying the plan gives an empty plan.
///
/// Applied one change at a time in the order given, no two accounts ever
/// share a key: disables come first, then each update after the one that
/// frees its key. Updates that would free each other's keys in a ring take
/// a detour: the first goes to `Rekeying:{id}` and gets a second `Update`
/// once the rest of the ring has moved.
pub(crate) fn plan_rekey(rows: &[StoredAddress]) -> Vec<Rekey> {
    let mut groups: BTreeMap<String, Vec<&StoredAddress>> = BTreeMap::new();
    for row in rows {
        groups.entry(key_of(&row.email)).or_default().push(row);
    }
    let mut plan = Vec::new();
    let mut moves = Vec::new();
    for (key, mut group) in groups {
        group.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        let Some((keeper, others)) = group.split_first() else {
            continue;
        };
        for row in others {
            let parking = format!("Disabled:{}", row.id);
            if row.old_key != parking {
                plan.push(Rekey::Disable {
                    id: row.id.clone(),
                    key: parking,
                    kept_by: keeper.id.clone(),
                });
            }
        }
        if keeper.old_key != key {
            moves.push(Move {
                id: &keeper.id,
                old: &keeper.old_key,
                new: key,
            });
        }
    }
    plan.extend(order_moves(moves));
    plan
}

/// A keeper's key change, before ordering.
struct Move<'a> {
    id: &'a str,
    old: &'a str,
    new: String,
}

/// `moves` as updates in an order that never puts two accounts on one key.
///
/// A move whose new key is another move's old key must wait for that one.
/// New keys are unique and so are old keys, so each move waits for at most
/// one and frees at most one: the moves form chains, run from the end that
/// waits for nobody, and rings, run after parking one member.
fn order_moves(moves: Vec<Move<'_>>) -> Vec<Rekey> {
    let n = moves.len();
    let by_old: HashMap<&str, usize> = moves.iter().enumerate().map(|(i, m)| (m.old, i)).collect();
    // frees[j] == Some(i): moving j frees the key i moves to.
    let mut frees = vec![None; n];
    let mut waits = vec![false; n];
    for (i, m) in moves.iter().enumerate() {
        if let Some(&j) = by_old.get(m.new.as_str()) {
            frees[j] = Some(i);
            waits[i] = true;
        }
    }
    let update = |m: &Move<'_>| Rekey::Update {
        id: m.id.to_owned(),
        key: m.new.clone(),
    };
    let mut plan = Vec::with_capacity(n);
    let mut done = vec![false; n];
    // Chain heads first; whatever is left after them lies on a ring.
    for start in (0..n).filter(|&i| !waits[i]).chain(0..n) {
        if done[start] {
            continue;
        }
        let ring = waits[start];
        let mut next = Some(start);
        if ring {
            plan.push(Rekey::Update {
                id: moves[start].id.to_owned(),
                key: format!("Rekeying:{}", moves[start].id),
            });
            // Done already, so the walk stops when it comes round to it.
            done[start] = true;
            next = frees[start];
        }
        while let Some(i) = next.filter(|&i| !done[i]) {
            done[i] = true;
            plan.push(update(&moves[i]));
            next = frees[i];
        }
        if ring {
            plan.push(update(&moves[start]));
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn row(id: &str, email: &str, old_key: &str, created_at: i64) -> StoredAddress {
        StoredAddress {
            id: id.into(),
            email: email.into(),
            old_key: old_key.into(),
            created_at,
        }
    }

    /// The keys before this change: trim and lower-case.
    fn old_key(email: &str) -> String {
        email.trim().to_lowercase()
    }

    fn stored(id: &str, email: &str, created_at: i64) -> StoredAddress {
        row(id, email, &old_key(email), created_at)
    }

    /// Applies `plan` one change at a time, as a table with a unique key
    /// would, failing the test if two accounts ever share a key. Returns each
    /// account's final key and whether the plan disabled it.
    fn apply(rows: &[StoredAddress], plan: &[Rekey]) -> BTreeMap<String, (String, bool)> {
        let mut table: BTreeMap<String, (String, bool)> = rows
            .iter()
            .map(|r| (r.id.clone(), (r.old_key.clone(), false)))
            .collect();
        for change in plan {
            let (id, key, disable) = match change {
                Rekey::Update { id, key } => (id, key, false),
                Rekey::Disable { id, key, .. } => (id, key, true),
            };
            let entry = table
                .get_mut(id)
                .unwrap_or_else(|| panic!("unknown id {id:?}"));
            entry.0.clone_from(key);
            entry.1 |= disable;
            let keys: HashSet<&str> = table.values().map(|(k, _)| k.as_str()).collect();
            assert_eq!(
                keys.len(),
                table.len(),
                "two accounts on one key after {change:?}"
            );
        }
        table
    }

    fn rekeyed(
        rows: &[StoredAddress],
        table: &BTreeMap<String, (String, bool)>,
    ) -> Vec<StoredAddress> {
        rows.iter()
            .map(|r| StoredAddress {
                old_key: table[&r.id].0.clone(),
                ..r.clone()
            })
            .collect()
    }

    #[test]
    fn unchanged_keys_produce_nothing() {
        let rows = [
            stored("a", "alice@example.com", 1),
            stored("b", " Bob@Example.COM", 2),
            // Does not parse, keeps its trim-and-lower-case key.
            stored("c", "\"carol\"@example.com", 3),
            stored("d", "dave@[127.0.0.1]", 4),
        ];
        assert_eq!(plan_rekey(&rows), []);
        assert_eq!(plan_rekey(&[]), []);
    }

    #[test]
    fn the_oldest_twin_keeps_the_key_and_the_others_are_disabled() {
        let rows = [
            stored("new", "User@Bücher.example", 30),
            stored("old", "user@xn--bcher-kva.example", 10),
            stored("b", "USER@ＢÜCHER.EXAMPLE ", 20),
            stored("a", "user@büｃher.EXAMPLE", 20),
            stored("other", "other@bücher.example", 40),
        ];
        let plan = plan_rekey(&rows);
        let disabled = |id: &str| Rekey::Disable {
            id: id.into(),
            key: format!("Disabled:{id}"),
            kept_by: "old".into(),
        };
        // "old" already has the new key; created_at ties go by id.
        assert_eq!(
            plan,
            [
                disabled("a"),
                disabled("b"),
                disabled("new"),
                Rekey::Update {
                    id: "other".into(),
                    key: "other@xn--bcher-kva.example".into(),
                },
            ]
        );
        let table = apply(&rows, &plan);
        assert_eq!(plan_rekey(&rekeyed(&rows, &table)), []);
    }

    #[test]
    fn an_older_unicode_twin_takes_the_key_after_the_punycode_one_is_parked() {
        let rows = [
            stored("uni", "user@bücher.example", 1),
            stored("puny", "user@xn--bcher-kva.example", 2),
        ];
        let plan = plan_rekey(&rows);
        assert_eq!(
            plan,
            [
                Rekey::Disable {
                    id: "puny".into(),
                    key: "Disabled:puny".into(),
                    kept_by: "uni".into(),
                },
                Rekey::Update {
                    id: "uni".into(),
                    key: "user@xn--bcher-kva.example".into(),
                },
            ]
        );
        let table = apply(&rows, &plan);
        assert_eq!(table["uni"], ("user@xn--bcher-kva.example".into(), false));
        assert_eq!(table["puny"], ("Disabled:puny".into(), true));
        assert_eq!(plan_rekey(&rekeyed(&rows, &table)), []);
    }

    #[test]
    fn a_key_is_taken_only_after_its_holder_moved_off_it() {
        // The old key of "kelvin" ("k@example.com") is the new key of "wide".
        let rows = [
            stored("wide", "k@ｅｘａｍｐｌｅ.com", 1),
            stored("kelvin", "\u{212A}@example.com", 2),
        ];
        assert_eq!(rows[1].old_key, "k@example.com");
        let plan = plan_rekey(&rows);
        assert_eq!(
            plan,
            [
                Rekey::Update {
                    id: "kelvin".into(),
                    key: "\u{212A}@example.com".into(),
                },
                Rekey::Update {
                    id: "wide".into(),
                    key: "k@example.com".into(),
                },
            ]
        );
        apply(&rows, &plan);
    }

    #[test]
    fn keys_swapped_in_a_ring_go_through_a_parking_key() {
        let rows = [
            row("a", "a@example.com", "b@example.com", 1),
            row("b", "b@example.com", "c@example.com", 2),
            row("c", "c@example.com", "a@example.com", 3),
        ];
        let plan = plan_rekey(&rows);
        assert_eq!(plan.len(), 4);
        assert_eq!(
            plan[0],
            Rekey::Update {
                id: "a".into(),
                key: "Rekeying:a".into(),
            }
        );
        let table = apply(&rows, &plan);
        for r in &rows {
            assert_eq!(table[&r.id], (r.email.clone(), false));
        }
    }

    proptest! {
        #[test]
        fn applying_a_plan_keys_everyone_once_and_keeps_the_oldest(
            picks in proptest::collection::vec((0..12usize, 0..4i64), 0..10)
        ) {
            const POOL: [&str; 12] = [
                "user@bücher.example", "USER@Bücher.example", "user@xn--bcher-kva.example",
                "User@XN--BCHER-KVA.example", "user@ｂücher.example", "k@ｅｘａｍｐｌｅ.com",
                "\u{212A}@example.com", "k@example.com", "\"q\"@example.com",
                "u@exa\u{200B}mple.com", "u@example.com", "U@EXAMPLE.COM",
            ];
            // Old keys were unique: keep the first account of each.
            let mut seen = HashSet::new();
            let rows: Vec<StoredAddress> = picks
                .iter()
                .enumerate()
                .map(|(i, &(p, t))| stored(&format!("id{i}"), POOL[p], t))
                .filter(|r| seen.insert(r.old_key.clone()))
                .collect();
            let plan = plan_rekey(&rows);
            let table = apply(&rows, &plan);
            for r in &rows {
                let (key, disabled) = &table[&r.id];
                let oldest = rows
                    .iter()
                    .filter(|o| key_of(&o.email) == key_of(&r.email))
                    .min_by_key(|o| (o.created_at, o.id.clone()))
                    .map(|o| o.id.as_str());
                if oldest == Some(r.id.as_str()) {
                    prop_assert_eq!((key.clone(), *disabled), (key_of(&r.email), false));
                } else {
                    prop_assert_eq!((key.clone(), *disabled), (format!("Disabled:{}", r.id), true));
                }
            }
            prop_assert_eq!(plan_rekey(&rekeyed(&rows, &table)), []);
        }
    }
}
