"""Per-account usage and cost: images generated per model, priced from the catalog; failed
calls are free. A free quota per model and region (catalog) is spent first; an account in
"free tier only" mode is refused once it is gone, as the service's console setting does.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Line:
    images: int = 0
    free_images: int = 0
    cost: float = 0.0
    price_known: bool = True


@dataclass
class Ledger:
    free_tier_only: set[str] = field(default_factory=set)  # accounts in free-tier-only mode
    _lines: dict[tuple[str, str, str], Line] = field(default_factory=lambda: defaultdict(Line))

    def free_left(self, account: str, region: str, model: str, quota: int | None) -> int | None:
        if quota is None:
            return None
        return max(0, quota - self._lines[(account, region, model)].free_images) if (account, region, model) in self._lines else quota

    def refuses(self, account: str, region: str, model: str, quota: int | None) -> bool:
        """True when the account wants the free tier only and this model's free quota is spent."""
        return account in self.free_tier_only and (self.free_left(account, region, model, quota) or 0) <= 0

    def charge(self, account: str, region: str, model: str, images: int, price: float | None, quota: int | None) -> None:
        """Book `images` generated images: free ones first, the rest at `price` (None: unknown)."""
        if images <= 0:
            return
        line = self._lines[(account, region, model)]
        free = min(images, self.free_left(account, region, model, quota) or 0)
        line.images += images
        line.free_images += free
        if price is None:
            line.price_known = False
        else:
            line.cost = round(line.cost + (images - free) * price, 6)

    def refund(self, account: str, region: str, model: str, images: int, price: float | None) -> None:
        """Undo a charge of images that were never generated (a cancelled task); paid ones first."""
        line = self._lines[(account, region, model)]
        paid = min(images, line.images - line.free_images)
        line.images -= images
        line.free_images -= images - paid
        if price is not None:
            line.cost = round(max(0.0, line.cost - paid * price), 6)

    def report(self, quotas: dict[tuple[str, str, str], int | None]) -> list[dict[str, Any]]:
        return [
            {"account": account, "region": region, "model": model, "images": line.images,
             "free_images": line.free_images,
             "free_quota_left": self.free_left(account, region, model, quotas.get((account, region, model))),
             "cost_usd": line.cost if line.price_known else None}
            for (account, region, model), line in sorted(self._lines.items()) if line.images or line.free_images
        ]

    def clear(self) -> None:
        self._lines.clear()
        self.free_tier_only.clear()

    def set_free_tier_only(self, account: str, enabled: bool) -> None:
        (self.free_tier_only.add if enabled else self.free_tier_only.discard)(account)

    def to_state(self) -> dict[str, Any]:
        """The ledger as JSON, for a store to keep."""
        return {"lines": [[*key, line.images, line.free_images, line.cost, line.price_known] for key, line in self._lines.items()],
                "free_tier_only": sorted(self.free_tier_only)}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> Ledger:
        ledger = cls()
        if state:
            ledger.free_tier_only.update(state["free_tier_only"])
            for account, region, model, images, free_images, cost, price_known in state["lines"]:
                ledger._lines[(account, region, model)] = Line(images, free_images, cost, price_known)
        return ledger
