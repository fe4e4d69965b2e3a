// lew sample scene: glass, chrome and matte marbles on a checkered floor.
#version 3.7;
global_settings { assumed_gamma 1.0 max_trace_level 8 }

camera { location <0, 2.4, -6.5> look_at <0, 0.6, 0> angle 42 }
light_source { <-6, 9, -7> color rgb 1.1 area_light <2, 0, 0>, <0, 0, 2>, 3, 3 adaptive 1 jitter }
light_source { <7, 4, -3> color rgb 0.35 shadowless }
sky_sphere { pigment { gradient y color_map { [0 color rgb <0.95, 0.85, 0.75>] [1 color rgb <0.35, 0.55, 0.9>] } } }

plane {
  y, 0
  pigment { checker color rgb <0.92, 0.92, 0.88> color rgb <0.18, 0.2, 0.25> scale 0.75 }
  finish { diffuse 0.8 reflection 0.12 }
}

#declare Glass = material {
  texture { pigment { color rgbf <0.85, 0.95, 1.0, 0.92> } finish { specular 0.8 roughness 0.002 reflection 0.08 } }
  interior { ior 1.5 }
}

sphere { <-1.6, 0.8, 0.6>, 0.8 material { Glass } }
sphere { <0.15, 0.65, 1.2>, 0.65 pigment { color rgb <0.85, 0.86, 0.9> } finish { metallic reflection 0.75 specular 0.6 } }
sphere { <1.6, 0.55, 0.2>, 0.55 pigment { color rgb <0.9, 0.25, 0.15> } finish { specular 0.5 roughness 0.02 } }
sphere { <0.45, 0.35, -0.9>, 0.35 pigment { color rgb <0.2, 0.6, 0.35> } finish { specular 0.4 } }
sphere { <-0.55, 0.25, -1.4>, 0.25 pigment { color rgb <0.95, 0.75, 0.2> } finish { metallic reflection 0.4 } }
