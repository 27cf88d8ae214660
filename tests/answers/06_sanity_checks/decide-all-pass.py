# wrong, visibly: every method declared passing, whatever the numbers
# feedback: do not follow from similarity
# %% decide
passes = {"gradient": True, "gradient × input": True}
print(passes)
