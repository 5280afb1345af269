using Xunit;

namespace Bpfilter.Module.Tests;

/// <summary>
/// What the cmdlets bind and return, through a real PowerShell runspace. None of these touch the kernel.
/// The module's types are asserted by name: this project does not reference the engine, so the module loads its own.
/// </summary>
public sealed class CmdletBindingTests : IDisposable
{
    private readonly ModuleSession _session = new();
    private readonly string _dir = Directory.CreateTempSubdirectory("bpft-yaml-").FullName;

    public void Dispose()
    {
        _session.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void New_BpfRule_binds_every_match_parameter()
    {
        var (output, errors) = _session.Run(
            "$r = New-BpfRule -Name web -Source 10.0.0.0/8 -Destination 192.0.2.200 -Protocol tcp -SourcePort 1024 -DestinationPort 443 -Action Accept\n" +
            "$r.GetType().FullName; $r.Name; $r.Verdict.ToString(); $r.Match.ToString()");
        Assert.Empty(errors);
        Assert.Equal(
            ["Bpfilter.Engine.Rules.Rule", "web", "accept", "source 10.0.0.0/8 destination 192.0.2.200 protocol tcp source-port 1024 destination-port 443"],
            output.Select(o => o.ToString()));
    }

    [Fact]
    public void New_BpfRule_with_a_port_but_no_protocol_fails_with_a_stable_id()
    {
        var (output, errors) = _session.Run("New-BpfRule -Name x -DestinationPort 23 -Action Drop");
        Assert.Empty(output);
        var error = Assert.Single(errors);
        Assert.Equal("Bpfilter.RulesetInvalid,Bpfilter.Commands.NewBpfRuleCommand", error.FullyQualifiedErrorId);
        Assert.Contains("needs protocol tcp or udp", error.Exception.Message);
    }

    [Fact]
    public void New_BpfRule_refuses_a_port_out_of_range_naming_the_parameter()
    {
        var (_, errors) = _session.Run("New-BpfRule -Protocol udp -DestinationPort 70000 -Action Drop");
        var error = Assert.Single(errors);
        Assert.Equal("Bpfilter.RulesetInvalid,Bpfilter.Commands.NewBpfRuleCommand", error.FullyQualifiedErrorId);
        Assert.StartsWith("-DestinationPort: '70000' is not a port", error.Exception.Message);
    }

    [Fact]
    public void Import_BpfRuleset_reports_file_line_and_column_and_goes_on_with_the_next_file()
    {
        var good = Path.Combine(_dir, "a-good.yaml");
        var bad = Path.Combine(_dir, "b-bad.yaml");
        File.WriteAllText(good, "bpfilter: 1\nname: good\nchains:\n  - { name: INPUT, hook: xdp, interface: lo }\n");
        File.WriteAllText(bad, "bpfilter: 1\nname: bad\nchains:\n  - name: INPUT\n    hook: xdp\n    interface: lo\n    rules:\n      - { action: maybe }\n");
        var (output, errors) = _session.Run($"Import-BpfRuleset -Path '{_dir}/*.yaml' | ForEach-Object Name");
        Assert.Equal("good", Assert.Single(output).ToString());
        var error = Assert.Single(errors);
        Assert.Equal("Bpfilter.RulesetSyntax,Bpfilter.Commands.ImportBpfRulesetCommand", error.FullyQualifiedErrorId);
        Assert.StartsWith($"{bad}:8:", error.Exception.Message);
        Assert.Contains("'maybe' is not a verdict: use accept, drop", error.Exception.Message);
    }

    [Fact]
    public void Import_BpfRuleset_of_a_missing_file_is_not_found()
    {
        var (_, errors) = _session.Run($"Import-BpfRuleset -Path '{_dir}/none.yaml'");
        Assert.Equal("Bpfilter.RulesetNotFound,Bpfilter.Commands.ImportBpfRulesetCommand", Assert.Single(errors).FullyQualifiedErrorId);
    }

    [Fact]
    public void Publish_with_WhatIf_loads_nothing_and_outputs_nothing()
    {
        var (output, errors) = _session.Run(
            "New-BpfRule -Name no-telnet -Protocol tcp -DestinationPort 23 -Action Drop | " +
            "Publish-BpfProgram -Name bpft-whatif -Interface lo -Policy Accept -WhatIf");
        Assert.Empty(errors);
        Assert.Empty(output);
        Assert.False(Directory.Exists("/sys/fs/bpf/bpfilter/bpft-whatif"));
    }

    [Fact]
    public void Publish_of_rules_with_a_bad_deployment_name_fails_before_the_kernel()
    {
        var (_, errors) = _session.Run("New-BpfRule -Protocol tcp -DestinationPort 23 -Action Drop | Publish-BpfProgram -Name 'Bad Name' -Interface lo");
        Assert.Equal("Bpfilter.RulesetInvalid,Bpfilter.Commands.PublishBpfProgramCommand", Assert.Single(errors).FullyQualifiedErrorId);
    }

    [Theory]
    [InlineData("Import-BpfRuleset", "Bpfilter.Engine.Rules.Ruleset")]
    [InlineData("Export-BpfRuleset", "System.String")]
    [InlineData("New-BpfRule", "Bpfilter.Engine.Rules.Rule")]
    [InlineData("Publish-BpfProgram", "Bpfilter.Engine.Deployment.DeploymentInfo")]
    [InlineData("Get-BpfCounter", "Bpfilter.Engine.Deployment.CounterRow")]
    [InlineData("Get-BpfChain", "Bpfilter.Engine.Deployment.DeployedChain")]
    public void Cmdlets_declare_what_they_output(string cmdlet, string type)
    {
        var (output, _) = _session.Run($"(Get-Command {cmdlet}).OutputType.Name");
        Assert.Contains(type, output.Select(o => o.ToString()));
    }

    [Fact]
    public void Names_complete_with_tab()
    {
        var (output, errors) = _session.Run(
            "(TabExpansion2 -inputScript 'New-BpfRule -Protocol u' -cursorColumn 23).CompletionMatches.CompletionText");
        Assert.Empty(errors);
        Assert.Equal("udp", Assert.Single(output).ToString());
    }
}
