using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Formats;

/// <summary>The text formats a ruleset can be written in.</summary>
public enum RulesetFormat
{
    /// <summary>Bpfilter's own YAML format, version 1 (about_Bpfilter_Rulesets); what Import-BpfRuleset reads.</summary>
    Yaml,
    /// <summary>The text of iptables-save and ip6tables-save, for iptables-restore.</summary>
    IptablesSave,
}

/// <summary>Writes a ruleset in any <see cref="RulesetFormat"/>.</summary>
public static class RulesetWriter
{
    public static string Write(Ruleset ruleset, RulesetFormat format) => format switch
    {
        RulesetFormat.Yaml => YamlRulesetWriter.Write(ruleset),
        RulesetFormat.IptablesSave => throw new BpfilterException("FormatNotSupported", FailureCategory.NotImplemented,
            "rulesets cannot be written in the iptables-save format yet: use -Format Yaml"),
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, null),
    };
}
