namespace Bpfilter.Engine.Rules;

/// <summary>One rule: a name (optional), what it matches, and its verdict.</summary>
public sealed record Rule
{
    public Rule(string? name, Match match, Verdict verdict)
    {
        if (name is not null) Names.CheckRuleName(name);
        ArgumentNullException.ThrowIfNull(match);
        ArgumentNullException.ThrowIfNull(verdict);
        match.Validate();
        Name = name;
        Match = match;
        Verdict = verdict;
    }

    public string? Name { get; }
    public Match Match { get; }
    public Verdict Verdict { get; }

    public override string ToString() => $"{Name ?? "(unnamed)"}: {Match} -> {Verdict}";
}
