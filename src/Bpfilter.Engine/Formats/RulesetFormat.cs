namespace Bpfilter.Engine.Formats;

/// <summary>The text formats a ruleset can be read from and written to.</summary>
public enum RulesetFormat
{
    /// <summary>Bpfilter's own YAML format, version 1 (about_Bpfilter_Rulesets).</summary>
    Yaml,
    /// <summary>The text of iptables-save and ip6tables-save, for iptables-restore.</summary>
    IptablesSave,
}
