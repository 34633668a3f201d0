"""The fake DashScope backend: the state its verbs share (catalog, store, clock, keys, limits,
usage, scenarios), who is calling, and control (sweep, reset). The verbs themselves are grouped
by family in backend/: service.generation, service.tasks and service.files.

No HTTP here (moto's models.py): the api/ modules read a request into a Call, call one verb
and render its Outcome; failures are DashScopeError values carrying their wire status and code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from dashscope_schemas import Catalog, Model, load_catalog

from . import ids, images
from .accounts import ApiKey, KeyRing, load_keys
from .backend.calls import Call, Outcome
from .backend.files import FileBackend
from .backend.generation import GenerationBackend, SyncResult
from .backend.tasks import SWEEP_BATCH, TaskBackend
from .clock import Clock, ControllableClock
from .config import Config
from .domain.billing import Ledger
from .domain.limits import RateLimiter
from .domain.tasks import Task
from .errors import DashScopeError
from .journal import Journal
from .scenarios import Scenario, ScenarioBook
from .shared import SharedClock, SharedLedger, SharedRateLimiter, SharedScenarioBook
from .store import Store
from .stores import SharedStore, open_store
from .uploads import Uploader


class FakeDashScope:
    def __init__(self, config: Config, *, clock: Clock | None = None, store: Store | None = None,
                 keys: KeyRing | None = None, new_id: Callable[[], str] = ids.new_id):
        self.config = config
        self.catalog: Catalog = load_catalog(config.profile)
        self.store = store or open_store(config.store, config.task_ttl)
        # With a store several processes share (SQLite, Redis), everything below that keeps state
        # keeps it there; in memory, in this process as ever.
        self.shared = self.store if isinstance(self.store, SharedStore) else None
        try:
            self._set_up(config, clock, keys, new_id)
        except BaseException:
            self.close()  # a start that fails lets go of the file or connection it opened
            raise

    def _set_up(self, config: Config, clock: Clock | None, keys: KeyRing | None, new_id: Callable[[], str]) -> None:
        self.clock = clock or (SharedClock(self.shared) if self.shared else ControllableClock())
        self.keys = keys or load_keys(config.keys_file)
        # The store's own secret unless the config sets one: URLs signed before a restart, or by
        # another worker, stay good.
        secret = config.signing_secret if config.signing_secret_given or self.shared is None else self.shared.signing_secret()
        self.signer = images.UrlSigner(secret.encode("utf-8"))
        self.uploader = Uploader(secret.encode("utf-8") + b"/uploads", self.signer.access_key_id,
                                 upload_path=self.catalog.endpoints["upload"].path,
                                 max_file_bytes=config.max_upload_mb * 1024 * 1024)
        self.new_id = new_id
        scale = config.rate_limits.get("scale", 1.0)
        self.scenarios = SharedScenarioBook(self.catalog, self.shared) if self.shared else ScenarioBook(self.catalog)
        self.limiter = SharedRateLimiter(self.shared, scale) if self.shared else RateLimiter(scale)
        self.ledger = SharedLedger(self.shared) if self.shared else Ledger()
        self.journal = Journal(config.journal_entries, config.journal_body_bytes)
        self.generation = _AtomicGeneration(self) if self.shared else GenerationBackend(self)
        self.tasks = TaskBackend(self)
        self.files = FileBackend(self)
        unknown = {k.region for k in self.keys.all()} - set(self.catalog.regions)
        if unknown:
            raise ValueError(f"keys for regions the catalog does not know: {', '.join(sorted(unknown))}")
        if self.shared is None:
            self.load_scenarios(config.scenarios)
            return
        # A shared store keeps its scenarios across restarts and workers: the config's go into it
        # once (and back in on reset), marked done in the same unit, so that a start that failed
        # before (a bad keys file) leaves them still to load, and two workers starting together
        # load them once.
        with self.atomic():
            if not self.shared.read(_CONFIG_SCENARIOS_LOADED):
                self.load_scenarios(config.scenarios)
                self.shared.change(_CONFIG_SCENARIOS_LOADED, lambda _: (True, None))

    # --- who is calling ---------------------------------------------------------------------

    def authenticate(self, authorization: str | None, region: str) -> ApiKey:
        scheme, _, key = (authorization or "").strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise DashScopeError.from_catalog(self.catalog, "no_api_key")
        found = self.keys.lookup(key)
        if found is None or found.region != region:
            raise DashScopeError.from_catalog(self.catalog, "invalid_api_key")
        return found

    def sweep(self, limit: int = SWEEP_BATCH) -> int:
        """Some housekeeping on the clock: records past their time, then status changes due; at
        most about `limit` records each call, so a caller can yield between calls. 0: all done."""
        now = self.clock.now()
        done = self.store.expire(now, limit)  # first: an expired task's due change is no work left
        return done + self.tasks.catch_up(now, max(0, limit - done))

    def account_of(self, call: Call) -> str:
        """The calling account, or "" for a key the fake does not know (the verb refuses it)."""
        found = self.keys.lookup((call.headers.get("authorization") or "").strip().partition(" ")[2].strip())
        return found.account if found else ""

    def charge(self, key: ApiKey, model: Model, images_made: int) -> None:
        self.ledger.charge(key.account, key.region, model.name, images_made, model.price_per_image.get(key.region),
                           model.free_quota_images.get(key.region))



    # --- tasks ------------------------------------------------------------------------------







    @staticmethod
    def total_pages(total: int, page_size: int) -> int:
        return math.ceil(total / page_size)

    # --- results ----------------------------------------------------------------------------



    # --- uploads ----------------------------------------------------------------------------



    # --- scenarios and usage ---------------------------------------------------------------

    def load_scenarios(self, entries: list[Any] | None) -> None:
        for entry in entries or []:
            self.scenarios.add(entry)

    def scenario_for(self, facts: dict[str, Any], chosen: str | None) -> Scenario | None:
        return self.scenarios.take(facts, chosen)

    def usage(self) -> list[dict[str, Any]]:
        quotas = {(k.account, k.region, m.name): m.free_quota_images.get(k.region)
                  for k in self.keys.all() for m in self.catalog.models.values()}
        return self.ledger.report(quotas)

    # --- control ----------------------------------------------------------------------------

    def atomic(self, scope: str = "") -> AbstractContextManager[None]:
        """One unit against other workers sharing the store (nothing to do in memory: a verb runs
        without a break in one event loop)."""
        return self.shared.atomic(scope) if self.shared else _ALONE

    def close(self) -> None:
        """Let go of the store (a file or a connection); the fake is not used after."""
        if self.shared is not None:
            self.shared.close()

    def reset(self) -> None:
        """Empty the store, scenarios (then reload those of the config), limits, usage and the
        request journal; real time. With a shared store, the store's state for every worker;
        the request journal is each process's own, so this clears the answering worker's only."""
        with self.atomic():
            self._reset()

    def _reset(self) -> None:
        self.store.clear()
        self.scenarios.clear()
        self.load_scenarios(self.config.scenarios)
        self.limiter.clear()
        self.ledger.clear()
        self.journal.clear()
        if isinstance(self.clock, ControllableClock):
            self.clock.reset()


_ALONE = nullcontext()
_CONFIG_SCENARIOS_LOADED = "config-scenarios-loaded"  # a cell of a shared store


class _AtomicGeneration(GenerationBackend):
    """With a shared store, a generation call is one unit across workers, from admission (rate
    limits, concurrent tasks, free tier, the scenario) through the task's creation: two workers
    cannot both admit the last allowed task."""

    def submit(self, endpoint: str, call: Call) -> Outcome[SyncResult | Task]:
        with self.service.atomic(self.service.account_of(call)):
            return super().submit(endpoint, call)
