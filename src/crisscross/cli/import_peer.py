"""``crisscross import PEER FILE -o OUT.pt``: a peer's released weights as a crisscross checkpoint."""

from __future__ import annotations

import argparse

from crisscross.runs.checkpoint import load_checkpoint
from crisscross.runs.peers import PEER_FORMATS, import_peer

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    peers = "; ".join(f"{name}: {peer.description}" for name, peer in PEER_FORMATS.items())
    p = sub.add_parser("import", help="convert a peer's released weights into a crisscross checkpoint",
                       description="Convert the released weights of a peer project into a checkpoint of the "
                       "registry model with the same architecture, with the windows its authors evaluate with, so "
                       f"'crisscross eval OUT.pt' scores it on crisscross's protocols. Peers: {peers}.")
    p.add_argument("peer", choices=tuple(PEER_FORMATS), help="the peer project whose file this is")
    p.add_argument("file", metavar="FILE", help="the released weights file")
    p.add_argument("--output", "-o", required=True, metavar="OUT.pt", help="new checkpoint (never overwritten)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Convert and say what the checkpoint holds."""
    out = import_peer(args.peer, args.file, args.output)
    ckpt = load_checkpoint(out)
    meta = ckpt["meta"]
    params = sum(v.numel() for v in ckpt["model_state"].values())
    print(f"wrote {out}: {ckpt['model_name']} ({params:,} parameters) with {args.peer}'s released weights, "
          f"{meta['input_frames']} -> {meta['output_frames']} frames per step; evaluate it with "
          f"'crisscross eval {out} --protocol {meta['protocol']} --data-dir DIR'")
    return 0
