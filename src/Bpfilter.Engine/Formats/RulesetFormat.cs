namespace Bpfilter.Engine.Formats;

/// <summary>The text formats a ruleset can be read from and written to.</summary>
public enum RulesetFormat { Yaml, IptablesSave }
