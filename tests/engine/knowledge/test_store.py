from __future__ import annotations

import json
from pathlib import Path

import pytest
from chromadb.api import ClientAPI
from chromadb.api.types import Documents, Embeddings

from engine.knowledge.embeddings import (
    HashedEmbeddingFunction,
    LiteLLMEmbeddingFunction,
    MiniLMEmbeddingFunction,
)
from engine.knowledge.records import NewLearning, ObjectiveContext, RatedObjective
from engine.knowledge.store import EmbeddingMismatchError, KnowledgeStore
from engine.types import PrivacyMode
from tests.engine.knowledge.inspect_chroma import count_upserts, everything_in

ISOLATED = "slack:TISOLATED1"
FEDERATED = "telegram:-1009876543210"
COLLECTIVE = "slack:TCOLLECT1"
NEWCOMER = "local:newcomer"

CANARY = "zebra-canary-7731"
CANARY_EMAIL = "canary.owner@secret-corp.example"

ALL_MODES = list(PrivacyMode)


async def fill_isolated_tenant(store: KnowledgeStore) -> None:
    mode = PrivacyMode.ISOLATED
    await store.add_learning(
        ISOLATED,
        f"Always greet with {CANARY} and cc {CANARY_EMAIL} in French",
        domain="support",
        confidence=0.99,
        impact=0.99,
        privacy_mode=mode,
    )
    await store.add_tool_recipe(
        ISOLATED,
        f"call the {CANARY} tool to answer in French",
        tool_name=f"tool_{CANARY}",
        domain="support",
        privacy_mode=mode,
    )
    await store.record_objective(
        ISOLATED, f"answer in French for {CANARY_EMAIL}", outcome_rating=1, lesson=CANARY
    )


def mentions_canary(text: str) -> bool:
    return CANARY in text or CANARY_EMAIL in text or ISOLATED in text


@pytest.mark.asyncio
async def test_an_isolated_tenants_canary_never_reaches_anyone_else(
    store: KnowledgeStore, raw_client: ClientAPI
) -> None:
    await fill_isolated_tenant(store)
    await store.add_learning(
        COLLECTIVE,
        "Answer in French when asked",
        domain="support",
        privacy_mode=PrivacyMode.COLLECTIVE,
    )

    query = f"greet in French {CANARY} {CANARY_EMAIL}"
    for tenant in (FEDERATED, COLLECTIVE, NEWCOMER):
        for mode in ALL_MODES:
            seen = [
                *await store.relevant_learnings(tenant, query, privacy_mode=mode, k=20),
                *await store.relevant_tool_recipes(tenant, query, privacy_mode=mode, k=20),
                *await store.bootstrap_rules(tenant, privacy_mode=mode, k=50),
            ]
            assert not any(mentions_canary(hit.text + hit.tool_name) for hit in seen)
        bad = (await store.objective_context(tenant, query, k=20)).bad
        assert not any(mentions_canary(past.text + past.lesson) for past in bad)
        assert not mentions_canary(json.dumps(await store.export_tenant(tenant)))
    for pattern in await store.cross_domain_patterns(min_domains=1):
        assert not mentions_canary(pattern.text)

    stored = everything_in(raw_client)
    for name in ("shared_learnings", "shared_tool_recipes"):
        assert not mentions_canary(json.dumps(stored[name]))

    # ... while the owner does find its own entries.
    own = await store.relevant_learnings(ISOLATED, query, privacy_mode=PrivacyMode.ISOLATED)
    assert any(CANARY in hit.text for hit in own)


@pytest.mark.asyncio
async def test_a_federated_learning_reaches_others_only_anonymized(
    store: KnowledgeStore, raw_client: ClientAPI
) -> None:
    await store.add_learning(
        FEDERATED,
        "Answer quokka questions in French; contact bob.smith@corp.example.com, "
        "<@U0ABCD123> or +44 20 7946 0958, chat -1009876543210",
        domain="wildlife",
        confidence=0.9,
        impact=0.8,
        privacy_mode=PrivacyMode.FEDERATED,
        names=["Bob Smith"],
    )

    hits = await store.relevant_learnings(
        COLLECTIVE, "quokka questions", privacy_mode=PrivacyMode.COLLECTIVE
    )
    assert len(hits) == 1
    (hit,) = hits
    assert hit.shared
    assert "quokka questions in French" in hit.text
    for identifying in ("bob.smith", "corp.example", "U0ABCD123", "7946", "-1009876543210"):
        assert identifying not in hit.text
    assert (hit.domain, hit.confidence, hit.impact) == ("wildlife", 0.9, 0.8)

    # An isolated tenant reads nothing shared.
    assert await store.relevant_learnings(NEWCOMER, "quokka questions") == []

    # The shared copy names no tenant: only a keyed hash of its origin.
    (shared,) = everything_in(raw_client)["shared_learnings"]
    assert "tenant" not in shared[1]
    assert FEDERATED not in json.dumps(shared)
    assert "9876543210" not in json.dumps(shared)


@pytest.mark.asyncio
async def test_tool_recipes_are_shared_only_in_collective_mode(store: KnowledgeStore) -> None:
    await store.add_tool_recipe(
        FEDERATED,
        "use fx_rate(base, quote) to convert currencies",
        tool_name="fx_rate",
        privacy_mode=PrivacyMode.FEDERATED,
    )
    await store.add_tool_recipe(
        COLLECTIVE,
        "use unit_convert(value, from, to) for miles and kilometres",
        tool_name="unit_convert",
        privacy_mode=PrivacyMode.COLLECTIVE,
    )

    collective = await store.relevant_tool_recipes(
        NEWCOMER, "convert things", privacy_mode=PrivacyMode.COLLECTIVE
    )
    assert [hit.tool_name for hit in collective] == ["unit_convert"]
    federated = await store.relevant_tool_recipes(
        NEWCOMER, "convert things", privacy_mode=PrivacyMode.FEDERATED
    )
    assert federated == []
    own = await store.relevant_tool_recipes(FEDERATED, "convert currencies")
    assert [hit.tool_name for hit in own] == ["fx_rate"]


@pytest.mark.asyncio
async def test_own_learnings_come_first_and_shared_copies_of_them_are_not_repeated(
    store: KnowledgeStore,
) -> None:
    await store.add_learning(
        FEDERATED, "Use metric units", domain="travel", privacy_mode=PrivacyMode.FEDERATED
    )
    hits = await store.relevant_learnings(
        FEDERATED, "metric units", privacy_mode=PrivacyMode.FEDERATED
    )
    assert [(hit.text, hit.shared) for hit in hits] == [("Use metric units", False)]


@pytest.mark.asyncio
async def test_relearning_the_same_text_updates_instead_of_duplicating(
    store: KnowledgeStore,
) -> None:
    first = await store.add_learning(FEDERATED, "Be brief", confidence=0.4)
    second = await store.add_learning(FEDERATED, "Be brief", confidence=0.9)
    assert first == second
    (hit,) = await store.relevant_learnings(FEDERATED, "brevity", k=5)
    assert hit.confidence == 0.9


@pytest.mark.asyncio
async def test_objective_context_finds_this_tenants_low_rated_ones_and_the_nearest(
    store: KnowledgeStore,
) -> None:
    await store.record_objective(
        FEDERATED, "convert 5 miles to km", outcome_rating=2, lesson="show the unit"
    )
    await store.record_objective(FEDERATED, "how many km is 10 miles", outcome_rating=5)
    await store.record_objective(COLLECTIVE, "convert 3 miles to km", outcome_rating=1)

    context = await store.objective_context(FEDERATED, "miles to kilometres", k=5)

    assert [(past.text, past.rating, past.outcome, past.lesson) for past in context.bad] == [
        ("convert 5 miles to km", 2, "bad", "show the unit")
    ]
    assert context.nearest_distance is not None and context.nearest_distance < 0.6
    far = await store.objective_context(FEDERATED, "write a haiku about autumn leaves")
    assert far.nearest_distance is not None and far.nearest_distance > 0.6
    assert (await store.objective_context("local:new", "anything")).nearest_distance is None


class CountingEmbedding(MiniLMEmbeddingFunction):
    """The default model, remembering every text it embedded."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def __call__(self, input: Documents) -> Embeddings:
        self.texts += list(input)
        return super().__call__(input)


@pytest.mark.asyncio
async def test_a_new_objective_type_brings_the_tenants_own_learnings_in_the_same_lookup(
    chroma_path: Path,
) -> None:
    """A tenant with nothing recorded costs no embedding; with a learning, a novel objective
    gets it (never another tenant's); one near a recorded objective does not."""
    embedding = CountingEmbedding()
    store = await KnowledgeStore.open(embedding, chroma_path=chroma_path)
    await store.add_learning(ISOLATED, f"Always greet with {CANARY}", domain="support")

    empty = await store.objective_context(NEWCOMER, "convert 5 miles to km",
                                          learnings_beyond=0.5)
    assert empty == ObjectiveContext(None, ())
    assert await store.relevant_learnings(NEWCOMER, "convert 5 miles to km") == []
    assert "convert 5 miles to km" not in embedding.texts

    await store.add_learning(NEWCOMER, "Show the unit after every converted number",
                             domain="units")
    novel = await store.objective_context(NEWCOMER, "convert 5 miles to km",
                                          learnings_beyond=0.5)
    assert novel.nearest_distance is None
    assert [hit.text for hit in novel.own_learnings] == [
        "Show the unit after every converted number"]
    assert "convert 5 miles to km" in embedding.texts

    await store.record_objective(NEWCOMER, "convert 5 miles to km", outcome_rating=5)
    near = await store.objective_context(NEWCOMER, "convert 6 miles to km",
                                         learnings_beyond=0.5)
    assert near.nearest_distance is not None and near.nearest_distance < 0.5
    assert near.own_learnings == ()
    far = await store.objective_context(NEWCOMER, "write a haiku about autumn",
                                        learnings_beyond=0.5)
    assert [hit.text for hit in far.own_learnings] == [
        "Show the unit after every converted number"]


@pytest.mark.asyncio
async def test_a_deleted_tenant_costs_no_embedding_again_and_other_processes_see_new_entries(
    chroma_path: Path,
) -> None:
    """Once a tenant was seen holding entries its lookups skip the check; deleting it
    forgets that at once, and a store of another process finds what this one added."""
    embedding = CountingEmbedding()
    store = await KnowledgeStore.open(embedding, chroma_path=chroma_path)
    other_process = await KnowledgeStore.open(CountingEmbedding(), chroma_path=chroma_path)
    assert (await other_process.objective_context(NEWCOMER, "a poem")).nearest_distance is None

    await store.record_objective(NEWCOMER, "write a poem about rain", outcome_rating=1)
    found = await other_process.objective_context(NEWCOMER, "write a poem about snow")
    assert [past.text for past in found.bad] == ["write a poem about rain"]

    await store.delete_tenant(NEWCOMER)
    embedding.texts.clear()
    assert await store.objective_context(NEWCOMER, "write a poem about snow") == \
        ObjectiveContext(None, ())
    assert embedding.texts == []


@pytest.mark.asyncio
async def test_the_nearest_bad_objectives_are_found_beyond_many_good_ones(
    store: KnowledgeStore,
) -> None:
    """One query reads the nearest few; a bad objective farther away still counts."""
    for n in range(12):
        await store.record_objective(FEDERATED, f"convert {n} miles to km", outcome_rating=5)
    await store.record_objective(FEDERATED, "a haiku about miles", outcome_rating=1,
                                 lesson="five seven five")

    context = await store.objective_context(FEDERATED, "convert 7 miles to km", k=3)

    assert [(past.text, past.lesson) for past in context.bad] == [
        ("a haiku about miles", "five seven five")]
    assert context.nearest_distance is not None and context.nearest_distance < 0.05


@pytest.mark.asyncio
async def test_bootstrap_gives_a_new_collective_tenant_the_best_shared_patterns(
    store: KnowledgeStore,
) -> None:
    contributions = [
        (FEDERATED, "Show units in every conversion result", 0.9, 0.9),
        (FEDERATED, "Answer in the user's language", 0.8, 0.7),
        (COLLECTIVE, "Put code in fenced blocks", 0.6, 0.5),
        (COLLECTIVE, "Use emoji sparingly", 0.3, 0.2),
    ]
    for tenant, text, confidence, impact in contributions:
        await store.add_learning(
            tenant,
            text,
            confidence=confidence,
            impact=impact,
            privacy_mode=PrivacyMode.COLLECTIVE if tenant == COLLECTIVE else PrivacyMode.FEDERATED,
        )
    await store.add_learning(ISOLATED, "Private rule", confidence=1.0, impact=1.0)

    rules = await store.bootstrap_rules(NEWCOMER, privacy_mode=PrivacyMode.COLLECTIVE, k=3)

    assert [rule.text for rule in rules] == [
        "Show units in every conversion result",
        "Answer in the user's language",
        "Put code in fenced blocks",
    ]
    assert all(rule.shared for rule in rules)
    assert await store.bootstrap_rules(NEWCOMER, privacy_mode=PrivacyMode.ISOLATED) == []
    # A contributor is not bootstrapped from its own patterns.
    own = await store.bootstrap_rules(FEDERATED, privacy_mode=PrivacyMode.FEDERATED, k=10)
    assert {rule.text for rule in own} == {"Put code in fenced blocks", "Use emoji sparingly"}


@pytest.mark.asyncio
async def test_cross_domain_patterns_need_three_domains(store: KnowledgeStore) -> None:
    everywhere = "Show units in every numeric conversion result"
    for tenant, domain in ((FEDERATED, "travel"), (COLLECTIVE, "cooking"), (NEWCOMER, "finance")):
        await store.add_learning(
            tenant, everywhere, domain=domain, privacy_mode=PrivacyMode.FEDERATED
        )
    for domain in ("travel", "cooking"):
        await store.add_learning(
            FEDERATED, "Use emoji sparingly", domain=domain, privacy_mode=PrivacyMode.FEDERATED
        )
    await store.add_learning(
        FEDERATED,
        "Cite the web source of every fact",
        domain="travel",
        privacy_mode=PrivacyMode.FEDERATED,
    )

    patterns = await store.cross_domain_patterns(min_domains=3)

    assert [(p.text, p.domains, p.members, p.origins) for p in patterns] == [
        (everywhere, ("cooking", "finance", "travel"), 3, 3)
    ]
    two_or_more = await store.cross_domain_patterns(min_domains=2)
    assert {p.text for p in two_or_more} == {everywhere, "Use emoji sparingly"}


@pytest.mark.asyncio
async def test_export_then_delete_leaves_no_vector_of_the_tenant(
    store: KnowledgeStore, raw_client: ClientAPI
) -> None:
    mode = PrivacyMode.COLLECTIVE
    await store.add_learning(COLLECTIVE, "Gone-rule: reply in haiku", privacy_mode=mode)
    await store.add_learning(COLLECTIVE, "Gone-rule: use metric", privacy_mode=mode)
    await store.add_tool_recipe(
        COLLECTIVE, "Gone-recipe: call haiku()", tool_name="haiku", privacy_mode=mode
    )
    await store.record_objective(COLLECTIVE, "Gone-objective: a poem", outcome_rating=2)
    await store.add_learning(FEDERATED, "Kept rule", privacy_mode=PrivacyMode.FEDERATED)

    export = await store.export_tenant(COLLECTIVE)
    sizes = {name: len(entries) for name, entries in export.items() if name != "tenant"}
    assert sizes == {
        "learnings": 2,
        "tool_recipes": 1,
        "objectives": 1,
        "shared_learnings": 2,
        "shared_tool_recipes": 1,
    }
    assert export["tenant"] == COLLECTIVE
    json.dumps(export)  # an export must be serialisable as it is

    assert await store.delete_tenant(COLLECTIVE) == 7

    stored = everything_in(raw_client)
    assert "Gone-" not in json.dumps(stored)
    assert all(
        metadata.get("tenant") != COLLECTIVE for rows in stored.values() for _, metadata in rows
    )
    assert [document for document, _ in stored["learnings"]] == ["Kept rule"]
    assert [document for document, _ in stored["shared_learnings"]] == ["Kept rule"]
    empty = await store.export_tenant(COLLECTIVE)
    assert all(entries == [] for name, entries in empty.items() if name != "tenant")
    assert await store.delete_tenant(COLLECTIVE) == 0


@pytest.mark.asyncio
async def test_knowledge_survives_reopening(store: KnowledgeStore, chroma_path: Path) -> None:
    await store.add_learning(FEDERATED, "Use metric units")
    reopened = await KnowledgeStore.open(store._embed, chroma_path=chroma_path)
    (hit,) = await reopened.relevant_learnings(FEDERATED, "units")
    assert hit.text == "Use metric units"


@pytest.mark.asyncio
async def test_a_store_refuses_another_embedding_model(
    store: KnowledgeStore, chroma_path: Path
) -> None:
    with pytest.raises(EmbeddingMismatchError):
        await KnowledgeStore.open(HashedEmbeddingFunction(), chroma_path=chroma_path)


@pytest.mark.asyncio
async def test_a_store_refuses_another_litellm_model(tmp_path: Path) -> None:
    path = tmp_path / "chroma"
    await KnowledgeStore.open(LiteLLMEmbeddingFunction("openai/a"), chroma_path=path)
    with pytest.raises(EmbeddingMismatchError):
        await KnowledgeStore.open(LiteLLMEmbeddingFunction("openai/b"), chroma_path=path)


@pytest.mark.asyncio
async def test_invalid_input_is_refused(store: KnowledgeStore) -> None:
    with pytest.raises(ValueError):
        await store.add_learning("", "no tenant")
    with pytest.raises(ValueError):
        await store.add_learning(FEDERATED, "   ")
    with pytest.raises(ValueError):
        await store.add_learning(FEDERATED, "too sure", confidence=1.5)
    with pytest.raises(ValueError):
        await store.record_objective(FEDERATED, "x", outcome_rating=6)
    with pytest.raises(ValueError):
        await store.relevant_learnings(" ", "anything")
    with pytest.raises(ValueError):
        await KnowledgeStore.open(store._embed)


@pytest.mark.asyncio
async def test_going_isolated_withdraws_what_was_shared(store: KnowledgeStore) -> None:
    mode = PrivacyMode.COLLECTIVE
    await store.add_learning(COLLECTIVE, "Use metric units", privacy_mode=mode)
    await store.add_tool_recipe(
        COLLECTIVE, "call convert()", tool_name="convert", privacy_mode=mode
    )

    assert await store.withdraw_shared(COLLECTIVE, privacy_mode=PrivacyMode.COLLECTIVE) == 0
    assert await store.withdraw_shared(COLLECTIVE, privacy_mode=PrivacyMode.FEDERATED) == 1
    assert await store.relevant_tool_recipes(NEWCOMER, "convert", privacy_mode=mode) == []
    assert len(await store.relevant_learnings(NEWCOMER, "units", privacy_mode=mode)) == 1

    assert await store.withdraw_shared(COLLECTIVE, privacy_mode=PrivacyMode.ISOLATED) == 1
    assert await store.relevant_learnings(NEWCOMER, "units", privacy_mode=mode) == []
    # The tenant's own entries stay.
    assert len(await store.relevant_learnings(COLLECTIVE, "units")) == 1


@pytest.mark.asyncio
async def test_a_tenants_many_shared_copies_do_not_crowd_out_the_others(
    store: KnowledgeStore,
) -> None:
    for number in range(20):  # more than the over-fetch of the unfiltered query
        await store.add_learning(
            FEDERATED, f"Use metric units, rule {number}", privacy_mode=PrivacyMode.FEDERATED
        )
    await store.add_learning(
        COLLECTIVE, "Prefer kilograms over pounds", privacy_mode=PrivacyMode.FEDERATED
    )
    vector = store._embed(["metric units"])[0]

    rows = store._others_rows("shared_learnings", vector, FEDERATED, k=5)

    assert [document for _, document, _, _ in rows] == ["Prefer kilograms over pounds"]


@pytest.mark.asyncio
async def test_similar_objectives_are_grouped_and_different_ones_are_not(
    store: KnowledgeStore,
) -> None:
    texts = [
        "convert 5 miles to km",
        "write a haiku about autumn",
        "how many kilometres is 10 miles",
        "convert 26 miles into kilometers",
    ]
    groups = await store.group_similar(texts, max_distance=0.5)
    assert groups[0] == [0, 2, 3]
    assert [1] in groups
    assert await store.group_similar([]) == []


@pytest.mark.asyncio
async def test_an_evolutions_rated_objectives_are_recorded_in_one_write(
    store: KnowledgeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes = count_upserts(monkeypatch, "objectives")
    ids = await store.record_objectives(FEDERATED, [
        RatedObjective("convert 5 miles to km", 2, "show the unit"),
        RatedObjective("write a haiku about autumn", 5),
        RatedObjective("convert 5 miles to km", 1, "show both units"),  # rated again: counts
    ])
    assert writes == [2]
    assert len(set(ids)) == 2 and ids[0] == ids[2]
    context = await store.objective_context(FEDERATED, "miles to kilometres", k=5)
    assert [(past.text, past.rating, past.lesson) for past in context.bad] == [
        ("convert 5 miles to km", 1, "show both units")
    ]
    assert await store.record_objectives(FEDERATED, []) == []
    assert writes == [2]  # nothing to record: no write


@pytest.mark.asyncio
async def test_learnings_and_their_shared_copies_are_one_write_each(
    store: KnowledgeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = count_upserts(monkeypatch, "learnings")
    shared = count_upserts(monkeypatch, "shared_learnings")
    learnings = [NewLearning("Answer quokka questions in French", "wildlife", confidence=0.9),
                 NewLearning("Cite the park ranger Bob Smith", "wildlife", confidence=0.8)]
    ids = await store.add_learnings(FEDERATED, learnings, privacy_mode=PrivacyMode.FEDERATED,
                                    names=["Bob Smith"])
    assert (own, shared) == ([2], [2]) and len(set(ids)) == 2
    hits = await store.relevant_learnings(
        COLLECTIVE, "quokka park ranger", privacy_mode=PrivacyMode.COLLECTIVE, k=5
    )
    assert all(hit.shared for hit in hits) and len(hits) == 2
    assert not any("Bob Smith" in hit.text for hit in hits)
    with pytest.raises(ValueError):
        await store.add_learnings(FEDERATED, [NewLearning("fine"), NewLearning("  ")])
