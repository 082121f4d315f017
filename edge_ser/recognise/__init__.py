"""From audio to judgements: the voice gate, the segmenter that cuts utterances into analysis
windows, the check that a window sounds like speech at all, labelling and smoothing, and the
push-based Recogniser that chains them with the front end and the classifier."""
