"""The inputs the properties are tried on: printable recipes and the arrays they build
(:mod:`.example`), Hypothesis strategies (:mod:`.strategies`), and the classes of input a report
names in words (:mod:`.input_classes`)."""
