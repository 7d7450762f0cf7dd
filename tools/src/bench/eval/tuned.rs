//! Weights under trial (`eval --weights ... --exact ...`): a one-shard store searched
//! with tantivy directly, through the engine's own parser and [`rank_with`], but with the
//! field weights and signal weights given on the command line instead of the compiled-in
//! [`FIELD_WEIGHTS`] and [`RANKING`]. One shard holds every document, so its own
//! statistics are the global ones: with the compiled-in weights it ranks exactly as the
//! engine does (the `eval` test checks this), and a trial costs no rebuild.

use std::path::Path;

use anyhow::{bail, Context as _};
use shard_proto::query::{self, Syntax};
use shard_proto::ranking::{rank_with, LinkColumns, Ranking, TopRanked, FIELD_WEIGHTS, RANKING};
use shard_proto::{weighted_query_parser, WikiSchema};
use tantivy::query::QueryParser;
use tantivy::{Index, ReloadPolicy, Searcher};

use super::{PageIds, Ranker};

/// Weights of one trial: the compiled-in ones where not given.
#[derive(Clone, Debug, PartialEq)]
pub struct Trial {
    pub fields: [f32; 5],
    pub ranking: Ranking,
}

impl Default for Trial {
    fn default() -> Self {
        Trial {
            fields: FIELD_WEIGHTS,
            ranking: RANKING,
        }
    }
}

/// The one shard of a store, ranked with a [`Trial`]'s weights.
pub struct TunedIndex {
    searcher: Searcher,
    /// Opened once with the searcher, as a serving replica opens them.
    links: LinkColumns,
    ids: PageIds,
    parser: QueryParser,
    schema: WikiSchema,
    trial: Trial,
}

impl TunedIndex {
    /// Opens the single shard of `store`; a store of several shards is refused (its local
    /// statistics would not be the global ones).
    pub fn open(store: &Path, trial: Trial) -> anyhow::Result<TunedIndex> {
        let shards: Vec<_> = searcher::cluster::store_manifests(store)?
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|bad| anyhow::anyhow!("{bad}"))?;
        let [manifest] = shards.as_slice() else {
            bail!(
                "{}: weights are tried on a one-shard store, this one has {} shards",
                store.display(),
                shards.len()
            );
        };
        // The shard's live directory (a slice's record names its current generation).
        let dir = shard_proto::store::live_shard_dirs(store)?
            .into_iter()
            .find(|(shard, _)| *shard == manifest.shard)
            .map(|(_, dir)| dir)
            .with_context(|| {
                format!("{}: shard {} is not live", store.display(), manifest.shard)
            })?;
        let index = Index::open_in_dir(&dir).with_context(|| format!("open {}", dir.display()))?;
        shard_proto::analysis::register(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let schema = manifest.check_schema(&WikiSchema::new())?;
        if trial.fields.iter().all(|weight| *weight <= 0.0) {
            bail!("--weights: at least one field needs a weight above 0");
        }
        // A field weighted 0 is left out of the query: `--cost` shows what dropping it saves.
        let parser = weighted_query_parser(&schema, &trial.fields);
        let searcher = reader.searcher();
        Ok(TunedIndex {
            links: LinkColumns::open(&searcher, &schema)?,
            ids: PageIds::open(&searcher)?,
            searcher,
            parser,
            schema,
            trial,
        })
    }
}

impl Ranker for TunedIndex {
    fn top_ids(&self, text: &str, k: usize) -> anyhow::Result<(Vec<u64>, u64)> {
        let parsed = query::parse(&self.parser, &self.schema.schema, text, Syntax::Lenient)?;
        let ranked = rank_with(&self.schema, parsed, text, &self.trial.ranking);
        let collector = TopRanked::new(k).with_links(&self.links);
        let (top, total) = collector.search(&self.searcher, ranked.as_ref(), None)?;
        Ok((self.ids.of(&top), total as u64))
    }

    fn name(&self) -> String {
        let r = &self.trial.ranking;
        format!(
            "trial {:?} exact {} phrase {} prior {}/{}",
            self.trial.fields, r.exact_boost, r.phrase_boost, r.prior_weight, r.prior_half
        )
    }
}
