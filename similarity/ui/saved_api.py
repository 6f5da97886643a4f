"""The saved-products HTTP API: ``/saved_products``, ``/save_product`` and ``/unsave_product``.

Only signed-in callers have saved products: ``gradio_client.Client(url, auth=(name, password))`` with a
users file, or a Hugging Face session on a Space. Anyone else gets "Sign in to save products." (an API
caller has no browser storage).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..accounts import user_key
from ..errors import PermissionDeniedError
from ..saved import SavedProducts, check_product_id
from .handlers import user_errors

SIGN_IN = "Sign in to save products."


class SavedApi:
    def __init__(self, saved: SavedProducts) -> None:
        self.saved = saved

    @user_errors
    def saved_products(self, request: gr.Request, profile: gr.OAuthProfile | None = None) -> dict[str, Any]:
        """The signed-in user's saved products, newest first.

        Returns:
            "products": each with id, name, category, brand, colors, tags, price, description, thumbnail (a data:
            URL), "note", "saved_at" (ISO 8601, UTC) and "in_catalog" (false once the product left the catalog)
        """
        user = _signed_in(request, profile)
        return {"products": [e.to_dict(thumbnails=True) for e in self.saved.entries(user)]}

    @user_errors
    def save_product(
        self, product_id: str, note: str | None, request: gr.Request, profile: gr.OAuthProfile | None = None
    ) -> dict[str, Any]:
        """Save a catalog product for the signed-in user (saving it again changes nothing).

        Args:
            product_id: the id of a catalog product (the "id" of a match).
            note: an optional short note (up to 200 characters).
        Returns:
            "product_id", "saved" (false when it was already saved) and "count" (saved products now)
        """
        user = _signed_in(request, profile)
        added = self.saved.save(user, product_id, note)
        return {"product_id": check_product_id(product_id), "saved": added, "count": len(self.saved.saved_ids(user))}

    @user_errors
    def unsave_product(
        self, product_id: str, request: gr.Request, profile: gr.OAuthProfile | None = None
    ) -> dict[str, Any]:
        """Remove one of the signed-in user's saved products.

        Args:
            product_id: the id of the saved product.
        Returns:
            "product_id", "removed" (false when it was not saved) and "count" (saved products now)
        """
        user = _signed_in(request, profile)
        removed = self.saved.unsave(user, product_id)
        return {
            "product_id": check_product_id(product_id),
            "removed": removed,
            "count": len(self.saved.saved_ids(user)),
        }


def _signed_in(request: Any, profile: Any) -> str:
    user = user_key(request, profile)
    if user is None:
        raise PermissionDeniedError(SIGN_IN)
    return user


def build_saved_api(api: SavedApi) -> None:
    """Hidden components behind the three named endpoints (parameter names come from the labels)."""
    with gr.Column(visible=False):
        product_id = gr.Textbox(label="product_id")
        note = gr.Textbox("", label="note")
        result = gr.JSON(label="result")
        trigger = gr.Button()
    trigger.click(api.saved_products, [], result, api_name="saved_products")
    trigger.click(api.save_product, [product_id, note], result, api_name="save_product")
    trigger.click(api.unsave_product, [product_id], result, api_name="unsave_product")
