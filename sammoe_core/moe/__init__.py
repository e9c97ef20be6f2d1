"""The mixture of experts: gate, selection policies, gate training, and the MoE segmenter."""
