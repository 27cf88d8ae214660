# right: the verdicts in a loop, from the bar named once
# %% decide
bar = 0.9
passes = {}
for name, value in similarity.items():
    passes[name] = bool(value < bar)
print(passes)
