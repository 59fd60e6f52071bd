//! One SLO's evaluation cycle: fetch what the plan needs through the
//! narrow client trait, keep the bucket history, and turn counts into
//! figures with `budget`. The engine calls this; `eval` and `run` share it.
//!
//! Every count is an increase between samples (see `plan::with_tile`), so
//! pieces tile: a window `(now - W, now]` is the final 5-minute buckets
//! after the boundary `b` at or before `now - W` (from memory), plus the
//! head since the last final bucket, minus `(b, now - W]`. The final part
//! of the head and each `(b, now - W]` are running sums grown by one slice
//! a cycle, so a cycle reads only the last minute or so and one slice per
//! window, whatever the window. None of it is pro rata.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::future::try_join_all;

use crate::budget::{self, Events};
use crate::eval::sli::{self, SliError};
use crate::exclusion::{Exclusion, Mask};
use crate::history::{align_down, History};
use crate::model::{Slo, Window};
use crate::plan::Semantics;
use crate::plan::{
    self, Queries, BUCKET_SECS, DIRECT_MAX_SECS, MAX_POINTS_PER_RANGE_QUERY, STEP_SECS,
};
use crate::prom::{QueryApi, QueryError};
use crate::state::{AlertStatus, Figures, LabelSet, SloError, SloOutcome, Status, WindowFigures};

/// A bucket is only final once late scrapes have been ingested.
pub const SETTLE_SECS: i64 = 60;

/// Per-label-set values of one query, as events over its window.
type Counts = BTreeMap<LabelSet, Events>;

/// One instant count: `(t - secs, t]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Span {
    at: i64,
    secs: u64,
    /// Counted as a piece (`plan::with_tile`) rather than as one query.
    piece: bool,
}

/// The evaluation state of one SLO: its bucket history per instance.
pub struct SloEvaluator {
    slo: Arc<Slo>,
    /// What the stored state and reloads know this definition by.
    key: crate::store::DefinitionKey,
    queries: Queries,
    /// The queries read their windows only through `rate()`, so pieces
    /// tile on every backend (`plan::with_tile`).
    rates_only: bool,
    /// All instances share one timeline ending at `last_end`.
    histories: BTreeMap<LabelSet, History>,
    start: Option<i64>,
    last_end: Option<i64>,
    /// Running sums of the head's final part and of each window's far
    /// edge, valid for the spelling they were counted with.
    partials: Partials,
    partials_spelling: Option<Spelling>,
    extra_exclusions: Arc<Vec<Exclusion>>,
    /// The maintenance windows of a span reaching a day past the last one
    /// asked for: enumerating a rule's occurrences costs up to milliseconds
    /// (an hourly rule over a month), and a cycle's span moves by seconds.
    mask_cache: Option<(i64, i64, Mask)>,
}

impl SloEvaluator {
    pub fn new(slo: Arc<Slo>) -> Self {
        let queries = Queries::for_slo(&slo);
        SloEvaluator {
            key: crate::store::definition_key(&slo),
            slo,
            rates_only: queries.tile_on_any_backend(),
            queries,
            histories: BTreeMap::new(),
            start: None,
            last_end: None,
            partials: Partials::default(),
            partials_spelling: None,
            extra_exclusions: Arc::default(),
            mask_cache: None,
        }
    }

    pub fn slo(&self) -> &Arc<Slo> {
        &self.slo
    }

    /// Takes a definition with the same key (same buckets) in place of
    /// this one: new maintenance windows, a new origin.
    pub fn redefine(&mut self, slo: Arc<Slo>) {
        self.slo = slo;
        self.mask_cache = None;
    }

    pub fn key(&self) -> crate::store::DefinitionKey {
        self.key
    }

    /// The state to store: where the shared timeline starts and ends, and
    /// the histories. `None` before the first successful fetch.
    pub fn saved(&self) -> Option<(i64, i64, &BTreeMap<LabelSet, History>)> {
        Some((self.start?, self.last_end?, &self.histories))
    }

    /// Resumes from stored state, so the next cycle fetches only the
    /// buckets after `last_end`. Refused (`false`, nothing kept) when it
    /// cannot be the state of this SLO at `now`: ending before the period
    /// began or after the last final bucket (a clock set back), or with
    /// histories that do not end where the timeline does.
    pub fn resume(
        &mut self,
        start: i64,
        last_end: i64,
        histories: BTreeMap<LabelSet, History>,
        now: i64,
    ) -> bool {
        let w = BUCKET_SECS as i64;
        let period_start = align_down(now - self.span(now), BUCKET_SECS);
        let last_final = align_down(now - SETTLE_SECS, BUCKET_SECS);
        let usable = start.rem_euclid(w) == 0
            && last_end.rem_euclid(w) == 0
            && start <= last_end
            && last_end >= period_start
            && last_end <= last_final
            && histories
                .values()
                .all(|h| h.last_end() == Some(last_end) && h.first_end().is_none_or(|f| f > start));
        if usable {
            self.start = Some(start);
            self.last_end = Some(last_end);
            self.histories = histories;
        }
        usable
    }

    /// Seconds of history needed at `now`: the period so far (a calendar
    /// period's start may be near) or the longest window.
    fn span(&self, now: i64) -> i64 {
        let longest = self.slo.windows().last().map(|w| w.secs()).unwrap_or(0) as i64;
        let (start, _) = self.slo.period_at(now);
        (now - start).max(longest)
    }

    /// Events of one instance in `(from, to]` (bucket-aligned) from its
    /// history, maintenance windows left out; `None` for an unknown
    /// instance.
    pub fn events_between(&self, group: &LabelSet, from: i64, to: i64) -> Option<Events> {
        let mask = self.mask(from, to);
        self.histories
            .get(group)
            .map(|h| h.events_between_except(from, to, &mask))
    }

    /// Maintenance windows known at run time (the API, a file), beside the
    /// spec's own.
    pub fn set_exclusions(&mut self, extra: Arc<Vec<Exclusion>>) {
        if *extra != *self.extra_exclusions {
            self.mask_cache = None;
        }
        self.extra_exclusions = extra;
    }

    /// [`SloEvaluator::mask`] through the cache.
    fn cached_mask(&mut self, from: i64, to: i64) -> Mask {
        match &self.mask_cache {
            Some((f, t, m)) if *f <= from && to <= *t => m.clip(from, to),
            _ => {
                let (f, t) = (from - 3_600, to + 86_400);
                let m = self.mask(f, t);
                let clipped = m.clip(from, to);
                self.mask_cache = Some((f, t, m));
                clipped
            }
        }
    }

    /// Every maintenance window in `(from, to]`, spec and run time.
    fn mask(&self, from: i64, to: i64) -> Mask {
        Mask::of(
            self.slo
                .exclusions
                .iter()
                .chain(self.extra_exclusions.iter()),
            from,
            to,
        )
    }

    /// Evaluates at `now` (unix seconds) on a backend with `semantics`.
    /// Errors are this SLO's alone.
    pub async fn evaluate<C: QueryApi>(
        &mut self,
        client: &C,
        now: i64,
        semantics: Semantics,
    ) -> SloOutcome {
        self.evaluate_inner(client, now, semantics)
            .await
            .map_err(SloError::new)
    }

    async fn evaluate_inner<C: QueryApi>(
        &mut self,
        client: &C,
        now: i64,
        semantics: Semantics,
    ) -> Result<Vec<(LabelSet, Status, Figures)>, EvalError> {
        let w = BUCKET_SECS as i64;
        // Pieces end on a step boundary; a window counted by one query ends
        // at the time asked, so that windows shorter than a step see every
        // scrape.
        let wall = now;
        let now = plan::evaluation_instant(now);
        let spelling = Spelling {
            semantics,
            tiles: self.rates_only || semantics.tiles_exactly(),
        };
        let last_final = align_down(now - SETTLE_SECS, BUCKET_SECS);
        let start = align_down(now - self.span(now), BUCKET_SECS);
        let from = match self.last_end {
            Some(end) if end >= start && end <= last_final && self.start.is_some() => end,
            _ => {
                self.histories.clear();
                self.partials.clear();
                self.start = Some(start);
                self.last_end = Some(start);
                start
            }
        };
        if last_final > from {
            let fetched = self
                .fetch_buckets(client, from + w, last_final, spelling)
                .await?;
            self.extend_histories(&fetched, last_final);
        }
        for h in self.histories.values_mut() {
            h.prune(start);
        }
        self.start = Some(start.max(self.start.unwrap_or(start)));

        // A window `(from, now]` is the buckets after the boundary `b` at or
        // before `from`, up to the last final one, plus the head since
        // then, minus the events of `(b, from]`. Where pieces tile, the
        // final part of the head and each `(b, from]` are running sums
        // that each cycle extends by the slice since the last one, so a
        // cycle reads the last SETTLE seconds and a slice per window,
        // whatever the window. A window that cannot be pieced (or, where
        // pieces would be estimates, one up to DIRECT_MAX) is one query.
        let windows = self.slo.windows();
        let (period_start, period_end) = self.slo.period_at(now);
        let calendar = self.slo.calendar.is_some();
        // A rolling period is one more window; a calendar period is the
        // buckets since its (aligned) start plus the head, or, in its first
        // minute, before any bucket of it is final, one query of its own.
        let period_secs = (now - period_start).max(0) as u64;
        let period_query = (calendar && period_start > last_final)
            .then(|| Span::whole(wall, (wall - period_start).max(1) as u64));
        let longest = windows.last().map_or(0, |w| w.secs() as i64);
        let mask = self.cached_mask(
            align_down(now - longest.max(now - period_start), BUCKET_SECS),
            period_end.max(now),
        );
        // Windows that hold a maintenance window are counted from buckets,
        // which leave it out, wherever pieces can be had.
        let direct = |secs: u64| {
            (secs % STEP_SECS != 0 || secs < SETTLE_SECS as u64)
                || (secs <= DIRECT_MAX_SECS
                    && !spelling.tiles
                    && !mask.overlaps(now - secs as i64, now))
        };
        if self.partials_spelling != Some(spelling) {
            self.partials.clear();
            self.partials_spelling = spelling.tiles.then_some(spelling);
        }
        let settled = align_down(now - SETTLE_SECS, STEP_SECS).max(last_final);
        let fresh = Span::between(settled, now);
        let mut targets = BTreeMap::from([(Partial::Head, (last_final, settled))]);
        let mut spans: BTreeSet<Span> = fresh.into_iter().collect();
        spans.extend(period_query);
        let rolling_period = (!calendar).then_some(period_secs);
        for secs in windows.iter().map(|w| w.secs()).chain(rolling_period) {
            let from = now - secs as i64;
            if direct(secs) {
                spans.insert(Span::whole(wall, secs));
            } else if align_down(from, BUCKET_SECS) < from {
                targets.insert(Partial::Edge(secs), (align_down(from, BUCKET_SECS), from));
            }
        }
        let grown: BTreeMap<Partial, (Running, Option<Span>)> = targets
            .iter()
            .map(|(&p, &(base, to))| (p, self.partials.grow(p, base, to)))
            .collect();
        spans.extend(grown.values().filter_map(|(_, slice)| *slice));
        let spans: Vec<Span> = spans.into_iter().collect();
        let results = try_join_all(
            spans
                .iter()
                .map(|&s| self.instant_counts(client, s, spelling)),
        )
        .await?;
        let by_span: BTreeMap<Span, Counts> = spans.iter().copied().zip(results).collect();
        let partials: Partials = grown
            .into_iter()
            .map(|(p, (mut running, slice))| {
                if let Some(counts) = slice.and_then(|s| by_span.get(&s)) {
                    running.add(counts);
                }
                (p, running)
            })
            .collect();

        let mut groups: BTreeSet<LabelSet> = self.histories.keys().cloned().collect();
        for counts in by_span.values() {
            groups.extend(counts.keys().cloned());
        }
        for running in partials.0.values() {
            groups.extend(running.counts.keys().cloned());
        }
        sli::check_instances(groups.len())?;
        let no_data = groups.is_empty();
        if no_data {
            groups.insert(LabelSet::new());
        }

        // Where each window's and the period's buckets begin: the same for
        // every group.
        let bases: Vec<i64> = windows
            .iter()
            .map(|w| align_down(now - w.secs() as i64, BUCKET_SECS))
            .chain([align_down(now - period_secs as i64, BUCKET_SECS)])
            .collect();
        let mut out = Vec::new();
        for group in &groups {
            let count = |span: Option<Span>| -> Events {
                span.and_then(|s| by_span.get(&s))
                    .and_then(|c| c.get(group))
                    .copied()
                    .unwrap_or_default()
            };
            let history = self.histories.get(group);
            // Inside (or within a minute after) a maintenance window the
            // head is left out: it is at most the last six minutes.
            let head = if mask.overlaps(last_final, now) {
                Events::default()
            } else {
                partials.events(Partial::Head, group) + count(fresh)
            };
            let sums: BTreeMap<i64, Events> = match history {
                Some(h) => {
                    let found = h.sums_from(&bases, last_final, &mask);
                    bases.iter().copied().zip(found).collect()
                }
                None => BTreeMap::new(),
            };
            let buckets_since = |base: i64| match sums.get(&base) {
                Some(e) => *e,
                None => history
                    .map(|h| h.events_between_except(base, last_final, &mask))
                    .unwrap_or_default(),
            };
            let events = |secs: u64| -> Events {
                let from = now - secs as i64;
                if direct(secs) {
                    if mask.covers(from, now) {
                        return Events::default();
                    }
                    return count(Some(Span::whole(wall, secs)));
                }
                let base = align_down(from, BUCKET_SECS);
                // The edge `(base, from]` lies in a bucket the mask may have
                // left out already.
                let outside = if mask.covers(base, base + BUCKET_SECS as i64) {
                    Events::default()
                } else {
                    partials.events(Partial::Edge(secs), group)
                };
                let buckets = buckets_since(base);
                Events::new(
                    buckets.bad + head.bad - outside.bad,
                    buckets.total + head.total - outside.total,
                )
                .non_negative()
            };
            let period_events = match period_query {
                _ if !calendar => events(period_secs),
                Some(_) if mask.covers(period_start, now) => Events::default(),
                Some(q) => count(Some(q)),
                None => buckets_since(period_start) + head,
            };
            let status = if no_data { Status::NoData } else { Status::Ok };
            // Before any final bucket holds data, the head is all there is.
            let seen_now = by_span.values().any(|c| c.contains_key(group))
                || partials.0.values().any(|r| r.counts.contains_key(group));
            let data_since = history
                .and_then(History::data_since)
                .or(seen_now.then_some(last_final));
            let coverage = budget::Coverage::at(data_since, now, period_secs as f64);
            let span = PeriodSpan {
                start: period_start,
                end: period_end,
                now,
                mask: &mask,
                coverage,
            };
            let figures = self.figures(&windows, |w: Window| events(w.secs()), period_events, span);
            out.push((group.clone(), status, figures));
        }
        if spelling.tiles {
            self.partials = partials;
        }
        Ok(out)
    }

    fn figures(
        &self,
        windows: &[Window],
        events: impl Fn(Window) -> Events,
        period: Events,
        span: PeriodSpan<'_>,
    ) -> Figures {
        let budget_ratio = self.slo.objective.budget_ratio();
        let coverage = span.coverage;
        // Maintenance time is no part of the period: it neither holds
        // budget nor spends it.
        let period_len = (span.end - span.start) as f64;
        let excluded_whole = span.mask.seconds_in(span.start, span.end) as f64;
        let excluded_so_far = span.mask.seconds_in(span.start, span.now) as f64;
        let covered_excluded = coverage.data_since.map_or(0.0, |d| {
            span.mask.seconds_in(d.max(span.start), span.now) as f64
        });
        let budget_base = (period_len - excluded_whole).max(0.0);
        let covered = (coverage.seconds - covered_excluded).max(0.0);
        let period_secs = budget_base;
        let period_error_ratio = period.error_ratio();
        let remaining_ratio =
            budget::remaining_ratio(period_error_ratio, budget_ratio, period_secs, covered);
        let remaining_seconds =
            budget::remaining_seconds(period_error_ratio, budget_ratio, period_secs, covered);
        let window_figures: Vec<WindowFigures> = windows
            .iter()
            .map(|&window| {
                let counts = events(window);
                let error_ratio = counts.error_ratio();
                let burn_rate = budget::burn_rate(error_ratio, budget_ratio);
                WindowFigures {
                    window,
                    events: counts,
                    error_ratio,
                    burn_rate,
                    exhaustion_seconds: budget::exhaustion_after(remaining_seconds, error_ratio),
                    excluded_seconds: span
                        .mask
                        .seconds_in(span.now - window.secs() as i64, span.now)
                        as f64,
                }
            })
            .collect();
        let find = |w: Window| window_figures.iter().find(|f| f.window == w);
        let burn = |w: Window| find(w).map_or(0.0, |f| f.burn_rate);
        let bad = |w: Window| find(w).map_or(0.0, |f| f.events.bad);
        let alerting = &self.slo.alerting;
        let alerts = alerting
            .windows
            .iter()
            .filter(|a| match a.severity {
                crate::model::Severity::Page => alerting.page_enabled,
                crate::model::Severity::Ticket => alerting.ticket_enabled,
            })
            .map(|a| {
                let condition = burn(a.long) > a.factor && burn(a.short) > a.factor;
                AlertStatus {
                    severity: a.severity,
                    long: a.long,
                    short: a.short,
                    burn_rate_threshold: a.factor,
                    condition,
                    low_traffic: a.severity == crate::model::Severity::Page
                        && a.min_bad_events.is_some_and(|min| bad(a.long) < min),
                    // Only the engine decides, from the state machine.
                    firing: false,
                }
            })
            .collect();
        let events_sli = matches!(self.queries, Queries::Events { .. });
        Figures {
            windows: window_figures,
            period_error_ratio,
            remaining_ratio,
            remaining_seconds,
            coverage,
            period_events: events_sli.then_some(period),
            period_start: span.start,
            period_end: span.end,
            budget_seconds: budget_base * budget_ratio,
            excluded_seconds: excluded_so_far,
            release_frozen: remaining_ratio < self.slo.release_freeze_below,
            alerts,
        }
    }

    /// The SLI's events in `(span.at - span.secs, span.at]`.
    async fn instant_counts<C: QueryApi>(
        &self,
        client: &C,
        span: Span,
        spelling: Spelling,
    ) -> Result<Counts, EvalError> {
        let seconds = span.secs as f64;
        let mut counts = Counts::new();
        let queries = if span.piece {
            spelling.queries(&self.queries, span.secs)
        } else {
            self.queries.at_range(span.secs, spelling.semantics)
        };
        match queries {
            Queries::Events { bad, total } => {
                let (bad_v, total_v) = tokio::try_join!(
                    client.instant(&bad, span.at),
                    client.instant(&total, span.at)
                )
                .map_err(EvalError::Query)?;
                let mut pairs: BTreeMap<LabelSet, (Option<f64>, Option<f64>)> = BTreeMap::new();
                for s in total_v {
                    pairs.entry(s.labels).or_default().1 = Some(s.value);
                }
                for s in bad_v {
                    pairs.entry(s.labels).or_default().0 = Some(s.value);
                }
                for (labels, (b, t)) in pairs {
                    counts.insert(labels, sli::from_rates(b, t, seconds, &bad, &total)?);
                }
            }
            Queries::Ratio { ratio } => {
                let values = client
                    .instant(&ratio, span.at)
                    .await
                    .map_err(EvalError::Query)?;
                for s in values {
                    if let Some(e) = sli::from_ratio(s.value, seconds, &ratio)? {
                        counts.insert(s.labels, e);
                    }
                }
            }
        }
        Ok(counts)
    }

    /// Bucket events in `(first_end - width, last_end]`, by label set and
    /// bucket end, in range queries of at most the point limit each.
    async fn fetch_buckets<C: QueryApi>(
        &self,
        client: &C,
        first_end: i64,
        last_end: i64,
        spelling: Spelling,
    ) -> Result<BTreeMap<LabelSet, BTreeMap<i64, Events>>, EvalError> {
        let w = BUCKET_SECS as i64;
        let seconds = w as f64;
        let queries = spelling.queries(&self.queries, BUCKET_SECS);
        let mut out: BTreeMap<LabelSet, BTreeMap<i64, Events>> = BTreeMap::new();
        let chunk = (MAX_POINTS_PER_RANGE_QUERY as i64 - 1) * w;
        let mut start = first_end;
        while start <= last_end {
            let end = (start + chunk).min(last_end);
            match &queries {
                Queries::Events { bad, total } => {
                    let (bad_s, total_s) = tokio::try_join!(
                        client.range(bad, start, end, BUCKET_SECS),
                        client.range(total, start, end, BUCKET_SECS)
                    )
                    .map_err(EvalError::Query)?;
                    type Pairs = BTreeMap<(LabelSet, i64), (Option<f64>, Option<f64>)>;
                    let mut pairs = Pairs::new();
                    for s in total_s {
                        for (t, v) in s.points {
                            pairs.entry((s.labels.clone(), t)).or_default().1 = Some(v);
                        }
                    }
                    for s in bad_s {
                        for (t, v) in s.points {
                            pairs.entry((s.labels.clone(), t)).or_default().0 = Some(v);
                        }
                    }
                    for ((labels, t), (b, v)) in pairs {
                        let e = sli::from_rates(b, v, seconds, bad, total)?;
                        out.entry(labels).or_default().insert(t, e);
                    }
                }
                Queries::Ratio { ratio } => {
                    let series = client
                        .range(ratio, start, end, BUCKET_SECS)
                        .await
                        .map_err(EvalError::Query)?;
                    for s in series {
                        let points = out.entry(s.labels).or_default();
                        for (t, v) in s.points {
                            if let Some(e) = sli::from_ratio(v, seconds, ratio)? {
                                points.insert(t, e);
                            }
                        }
                    }
                }
            }
            start = end + w;
        }
        Ok(out)
    }

    fn extend_histories(
        &mut self,
        fetched: &BTreeMap<LabelSet, BTreeMap<i64, Events>>,
        last_final: i64,
    ) {
        let start = self.start.unwrap_or(last_final);
        let width = BUCKET_SECS;
        for labels in fetched.keys() {
            if !self.histories.contains_key(labels) {
                // A label set seen for the first time had no data before:
                // its earlier buckets are empty, not unknown.
                let mut h = History::new(width);
                h.start_at(start);
                if let Some(end) = self.last_end {
                    h.extend_to(end, |_| Events::default());
                }
                self.histories.insert(labels.clone(), h);
            }
        }
        for (labels, h) in self.histories.iter_mut() {
            let points = fetched.get(labels);
            h.extend_to(last_final, |t| {
                points.and_then(|p| p.get(&t)).copied().unwrap_or_default()
            });
            if let Some(&first) = points.and_then(|p| p.keys().next()) {
                h.mark_data(first);
            }
        }
        self.last_end = Some(last_final);
    }
}

/// The period an evaluation's figures are over, and its maintenance time.
struct PeriodSpan<'m> {
    start: i64,
    /// `now` for a rolling period; the calendar period's end otherwise.
    end: i64,
    now: i64,
    mask: &'m Mask,
    coverage: budget::Coverage,
}

/// How this evaluation spells a count over `(t - secs, t]`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Spelling {
    semantics: Semantics,
    /// Pieces sum exactly: either the backend counts increases between
    /// samples or the queries only read windows through `rate()`.
    tiles: bool,
}

impl Spelling {
    fn queries(self, queries: &Queries, secs: u64) -> Queries {
        if self.tiles && secs % STEP_SECS == 0 {
            queries.at_tile(secs, self.semantics)
        } else {
            queries.at_range(secs, self.semantics)
        }
    }
}

impl Span {
    /// The span `(from, to]`, none when empty.
    fn between(from: i64, to: i64) -> Option<Span> {
        (to > from).then(|| Span {
            at: to,
            secs: (to - from) as u64,
            piece: true,
        })
    }

    /// The window `(at - secs, at]` as one query.
    fn whole(at: i64, secs: u64) -> Span {
        Span {
            at,
            secs,
            piece: false,
        }
    }
}

/// A running sum the evaluator keeps between cycles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Partial {
    /// `(last final bucket end, now - SETTLE]`.
    Head,
    /// `(b, now - secs]` for the bucket boundary `b` at or before it.
    Edge(u64),
}

/// Events of every group in `(base, upto]`.
#[derive(Clone, Debug, Default, PartialEq)]
struct Running {
    base: i64,
    upto: i64,
    counts: Counts,
}

impl Running {
    fn add(&mut self, slice: &Counts) {
        for (labels, e) in slice {
            let sum = self.counts.entry(labels.clone()).or_default();
            *sum = *sum + *e;
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Partials(BTreeMap<Partial, Running>);

impl FromIterator<(Partial, Running)> for Partials {
    fn from_iter<I: IntoIterator<Item = (Partial, Running)>>(iter: I) -> Self {
        Partials(iter.into_iter().collect())
    }
}

impl Partials {
    fn clear(&mut self) {
        self.0.clear();
    }

    /// The running sum of `(base, to]` so far and the slice still to be
    /// counted into it: the part after what is held when it holds a start
    /// of the same span, else the whole span.
    fn grow(&self, p: Partial, base: i64, to: i64) -> (Running, Option<Span>) {
        match self.0.get(&p) {
            Some(r) if r.base == base && r.upto <= to => (
                Running {
                    upto: to,
                    ..r.clone()
                },
                Span::between(r.upto, to),
            ),
            _ => (
                Running {
                    base,
                    upto: to,
                    counts: Counts::new(),
                },
                Span::between(base, to),
            ),
        }
    }

    fn events(&self, p: Partial, group: &LabelSet) -> Events {
        self.0
            .get(&p)
            .and_then(|r| r.counts.get(group))
            .copied()
            .unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("query failed: {0}")]
    Query(QueryError),
    /// Without the backend's range semantics no query can be spelt.
    #[error("cannot tell how the query backend counts: {0}")]
    Backend(crate::prom::backend::DetectError),
    #[error(transparent)]
    Sli(#[from] SliError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prom::{RangeSeries, Sample};
    use std::sync::Mutex;

    /// A scripted Prometheus: per-minute event counts, answering
    /// `bad[W]` / `total[W]` with the exact per-second rate over (t-W, t].
    struct FakeProm {
        /// Cumulative (bad, total) events up to minute index*60, inclusive.
        cumulative: Vec<(f64, f64)>,
        range_points: Mutex<usize>,
        /// Range (seconds) of every instant query asked.
        instant_ranges: Mutex<Vec<i64>>,
    }

    impl FakeProm {
        /// Events in minutes ending in (from, to].
        fn events(&self, which: &str, from: i64, to: i64) -> f64 {
            let at = |t: i64| -> f64 {
                let i = t.div_euclid(60);
                if i < 0 {
                    return 0.0;
                }
                let (b, tot) = self.cumulative[(i as usize).min(self.cumulative.len() - 1)];
                if which == "bad" {
                    b
                } else {
                    tot
                }
            };
            at(to) - at(from)
        }
        /// Answers `bad[W]` / `total[W]` in any spelling `plan` gives.
        fn answer(&self, query: &str, at: i64) -> f64 {
            let which = if query.contains("bad") {
                "bad"
            } else {
                "total"
            };
            let w = range_secs(query);
            self.events(which, at - w, at) / w as f64
        }
    }

    /// The range of the query's first selector, in whole seconds, in any
    /// spelling `plan` gives (`5m`, `5m1ms`, `5m:15s`).
    fn range_secs(query: &str) -> i64 {
        let (_, rest) = query.split_once('[').unwrap();
        let (range, _) = rest.split_once(']').unwrap();
        let range = range.split(':').next().unwrap();
        let range = range.strip_suffix("1ms").unwrap_or(range);
        crate::time::parse(range).unwrap().as_secs() as i64
    }

    impl QueryApi for FakeProm {
        async fn instant(&self, query: &str, at: i64) -> Result<Vec<Sample>, QueryError> {
            let secs = range_secs(query);
            self.instant_ranges.lock().unwrap().push(secs);
            Ok(vec![Sample {
                labels: LabelSet::new(),
                value: self.answer(query, at),
            }])
        }
        async fn range(
            &self,
            query: &str,
            start: i64,
            end: i64,
            step: u64,
        ) -> Result<Vec<RangeSeries>, QueryError> {
            let mut points = Vec::new();
            let mut t = start;
            while t <= end {
                points.push((t, self.answer(query, t)));
                t += step as i64;
            }
            *self.range_points.lock().unwrap() += points.len();
            Ok(vec![RangeSeries {
                labels: LabelSet::new(),
                points,
            }])
        }
    }

    fn slo(period_days: u64) -> Arc<Slo> {
        Arc::new(crate::model::test_slo("svc", "avail", 99.0, period_days))
    }

    fn fake(days: i64) -> FakeProm {
        // Hourly varying traffic, and an error burst in one quiet hour.
        let mut acc = (0.0, 0.0);
        let cumulative = (0..=days * 1_440 + 60)
            .map(|i| {
                let hour = (i / 60) % 24;
                let total = if hour < 6 {
                    10.0
                } else {
                    100.0 + (i % 7) as f64
                };
                let bad = if (i / 60) % 97 == 3 {
                    total * 0.5
                } else {
                    (i % 5) as f64 * 0.1
                };
                if i > 0 {
                    acc = (acc.0 + bad, acc.1 + total);
                }
                acc
            })
            .collect();
        FakeProm {
            cumulative,
            range_points: Mutex::new(0),
            instant_ranges: Mutex::new(vec![]),
        }
    }

    #[tokio::test]
    async fn every_window_matches_exact_counts_at_any_instant() {
        for semantics in [Semantics::Closed, Semantics::LeftOpen, Semantics::Anchored] {
            exact_counts(semantics).await;
        }
    }

    async fn exact_counts(semantics: Semantics) {
        let prom = fake(33);
        let slo = slo(30);
        let mut ev = SloEvaluator::new(slo.clone());
        // On a bucket end, between bucket ends, and off the minute grid.
        for now in [
            32 * 86_400 + 3_600,
            32 * 86_400 + 3_600 + 420,
            32 * 86_400 + 3_600 + 437,
        ] {
            let out = ev.evaluate(&prom, now, semantics).await.unwrap();
            let (_, status, f) = &out[0];
            assert_eq!(*status, Status::Ok);
            for wf in &f.windows {
                let w = wf.window.secs() as i64;
                let want = prom.events("bad", now - w, now) / prom.events("total", now - w, now);
                // Edge, buckets and head tile the window exactly.
                assert!(
                    (wf.error_ratio - want).abs() <= want * 1e-12,
                    "{} at {now}: {} vs {want}",
                    wf.window,
                    wf.error_ratio
                );
            }
            let p = 30 * 86_400;
            let want = prom.events("bad", now - p, now) / prom.events("total", now - p, now);
            assert!((f.period_error_ratio - want).abs() <= want * 1e-12);
            let events = f.period_events.unwrap();
            let total = prom.events("total", now - p, now);
            assert!((events.total - total).abs() <= total * 1e-12);
        }
    }

    #[tokio::test]
    async fn later_cycles_fetch_only_new_buckets() {
        let prom = fake(31);
        let mut ev = SloEvaluator::new(slo(30));
        let t0 = 31 * 86_400;
        ev.evaluate(&prom, t0, Semantics::Closed).await.unwrap();
        let first = *prom.range_points.lock().unwrap();
        assert!(first >= 30 * 288, "start-up reads the period: {first}");
        ev.evaluate(&prom, t0 + 30, Semantics::Closed)
            .await
            .unwrap();
        ev.evaluate(&prom, t0 + 300, Semantics::Closed)
            .await
            .unwrap();
        let later = *prom.range_points.lock().unwrap() - first;
        // Two queries (bad, total) for the one bucket that completed.
        assert_eq!(later, 2);
    }

    #[tokio::test]
    async fn a_resumed_evaluator_fetches_only_the_gap_and_agrees_with_a_cold_one() {
        let prom = fake(33);
        let t0 = 31 * 86_400;
        let mut before = SloEvaluator::new(slo(30));
        before.evaluate(&prom, t0, Semantics::Closed).await.unwrap();
        let (start, last_end, histories) = before.saved().unwrap();
        let histories = histories.clone();
        // Down for two hours.
        let t1 = t0 + 7_200 + 17;
        let mut resumed = SloEvaluator::new(slo(30));
        assert!(resumed.resume(start, last_end, histories.clone(), t1));
        *prom.range_points.lock().unwrap() = 0;
        let warm = resumed
            .evaluate(&prom, t1, Semantics::Closed)
            .await
            .unwrap();
        let gap = *prom.range_points.lock().unwrap();
        assert_eq!(gap, 2 * 24, "bad and total for the 24 buckets of the gap");
        let cold = SloEvaluator::new(slo(30))
            .evaluate(&prom, t1, Semantics::Closed)
            .await
            .unwrap();
        // Where data begins may differ before the period: the resumed one
        // remembers the older start, as an evaluator that never stopped
        // does; both cover the whole period.
        let since = |o: &[(LabelSet, Status, Figures)]| o[0].2.coverage.data_since.unwrap();
        assert!(since(&warm) <= since(&cold) && since(&cold) <= t1 - 30 * 86_400 + 3_600);
        let mut warm = warm;
        warm[0].2.coverage.data_since = cold[0].2.coverage.data_since;
        assert_eq!(warm, cold);

        // Too old (a month later), or ahead of the clock: not resumed.
        let mut late = SloEvaluator::new(slo(30));
        assert!(!late.resume(start, last_end, histories.clone(), t0 + 31 * 86_400));
        assert!(late.saved().is_none());
        assert!(!late.resume(start, last_end, histories, last_end - 300));
    }

    #[tokio::test]
    async fn where_ranges_tile_no_cycle_reads_more_than_minutes() {
        // VictoriaMetrics natively; Prometheus 2.x through subqueries, as the
        // test SLO reads its windows through `rate()` only.
        for semantics in [Semantics::LastBefore, Semantics::Closed] {
            reads_only_minutes(semantics).await;
        }
    }

    async fn reads_only_minutes(semantics: Semantics) {
        let prom = fake(31);
        let mut ev = SloEvaluator::new(slo(30));
        let t0 = 31 * 86_400 + 7;
        ev.evaluate(&prom, t0, semantics).await.unwrap();
        ev.evaluate(&prom, t0 + 30, semantics).await.unwrap();
        prom.instant_ranges.lock().unwrap().clear();
        // Twenty minutes of 30 s cycles: bucket ends, far edges crossing
        // boundaries, the head restarting.
        for k in 2..42 {
            ev.evaluate(&prom, t0 + 30 * k, semantics).await.unwrap();
        }
        let ranges = prom.instant_ranges.lock().unwrap().clone();
        // The unsettled minute and one slice per running sum: no window,
        // edge or head is re-read.
        assert!(!ranges.is_empty());
        let most = SETTLE_SECS + STEP_SECS as i64;
        assert!(ranges.iter().all(|&r| r <= most), "{ranges:?}");
    }

    #[tokio::test]
    async fn cycles_at_any_gap_keep_every_window_exact() {
        for semantics in [Semantics::Closed, Semantics::LastBefore] {
            let prom = fake(33);
            let mut ev = SloEvaluator::new(slo(30));
            let mut now = 32 * 86_400 + 11;
            for gap in [10, 30, 47, 5, 300, 1_000, 61, 15, 3_600, 29] {
                now += gap;
                let out = ev.evaluate(&prom, now, semantics).await.unwrap();
                let at = plan::evaluation_instant(now);
                let f = &out[0].2;
                for wf in &f.windows {
                    let w = wf.window.secs() as i64;
                    let bad = prom.events("bad", at - w, at);
                    let total = prom.events("total", at - w, at);
                    assert!(
                        (wf.events.bad - bad).abs() <= bad * 1e-12
                            && (wf.events.total - total).abs() <= total * 1e-12,
                        "{semantics:?} {} at {now}: {:?} vs ({bad}, {total})",
                        wf.window,
                        wf.events
                    );
                }
                let p = 30 * 86_400;
                let total = prom.events("total", at - p, at);
                let got = f.period_events.unwrap().total;
                assert!((got - total).abs() <= total * 1e-12, "{got} vs {total}");
            }
        }
    }

    #[tokio::test]
    async fn no_series_is_no_data_with_a_full_budget() {
        let mut ev = SloEvaluator::new(slo(30));
        let out = ev
            .evaluate(&Constant(None), 40 * 86_400, Semantics::Closed)
            .await
            .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1, Status::NoData);
        assert_eq!(out[0].2.remaining_ratio, 1.0);
        assert!(out[0].2.windows.iter().all(|w| w.error_ratio == 0.0));
    }

    #[tokio::test]
    async fn a_nan_rate_is_an_error_not_a_figure() {
        let mut ev = SloEvaluator::new(slo(30));
        let err = ev
            .evaluate(&Constant(Some(f64::NAN)), 40 * 86_400, Semantics::Closed)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not a finite rate"), "{err}");
    }

    /// Every instant query answers one series with this value (none for
    /// `None`); range queries answer nothing.
    struct Constant(Option<f64>);

    impl QueryApi for Constant {
        async fn instant(&self, _: &str, _: i64) -> Result<Vec<Sample>, QueryError> {
            Ok(self
                .0
                .map(|value| Sample {
                    labels: LabelSet::new(),
                    value,
                })
                .into_iter()
                .collect())
        }
        async fn range(
            &self,
            _: &str,
            _: i64,
            _: i64,
            _: u64,
        ) -> Result<Vec<RangeSeries>, QueryError> {
            Ok(vec![])
        }
    }
}
