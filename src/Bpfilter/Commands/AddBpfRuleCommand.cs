using System.Management.Automation;
using Bpfilter.Completion;
using Bpfilter.Engine;
using Bpfilter.Engine.Editing;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Commands;

/// <summary>
/// Returns a copy of a ruleset or chain with rules inserted at a position (appended by default). The input object
/// is immutable and stays as it was; nothing outside the session changes, so there is no -WhatIf.
/// </summary>
[Cmdlet(VerbsCommon.Add, "BpfRule", DefaultParameterSetName = RulesetSet)]
[OutputType(typeof(Ruleset), ParameterSetName = [RulesetSet])]
[OutputType(typeof(Chain), ParameterSetName = [ChainSet])]
[OutputType(typeof(UserChain), ParameterSetName = [UserChainSet])]
public sealed class AddBpfRuleCommand : PSCmdlet
{
    private const string RulesetSet = "Ruleset", ChainSet = "Chain", UserChainSet = "UserChain";

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = RulesetSet)]
    public Ruleset? Ruleset { get; set; }

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = ChainSet)]
    public Chain? Chain { get; set; }

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = UserChainSet)]
    public UserChain? UserChain { get; set; }

    [Parameter(ParameterSetName = RulesetSet)]
    [ArgumentCompleter(typeof(ChainNameCompleter))]
    public string? ChainName { get; set; }

    [Parameter(Mandatory = true, Position = 0)]
    public Rule[] Rule { get; set; } = [];

    [Parameter]
    public int? Position { get; set; }

    protected override void ProcessRecord()
    {
        try
        {
            WriteObject(ParameterSetName switch
            {
                RulesetSet => RulesetEditor.AddRules(Ruleset!, ChainName, Rule, Position),
                ChainSet => RulesetEditor.AddRules(Chain!, Rule, Position),
                _ => (object)RulesetEditor.AddRules(UserChain!, Rule, Position),
            });
        }
        catch (BpfilterException e)
        {
            WriteError(ErrorRecords.From(e, (object?)Ruleset ?? (object?)Chain ?? UserChain));
        }
    }
}
