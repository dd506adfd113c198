"""Looking into trained models: error plots per joint and horizon (:mod:`.errors`), skeleton animations
(:mod:`.animate`), attention maps (:mod:`.attention_maps`) and plots of result tables (:mod:`.plots`)."""
